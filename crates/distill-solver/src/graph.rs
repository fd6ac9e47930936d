//! Runs a graph of jobs (the stages of a build) in parallel: each job starts once every job
//! it depends on has finished, independent jobs run at the same time on their own threads,
//! and the first failure cancels the rest (jobs not started never start; running ones see
//! the [`Cancel`] and stop).

use std::sync::{Arc, Condvar, Mutex};

use crate::cancel::Cancel;

/// How a job ended.
enum Slot<T> {
    Pending,
    Done(Arc<T>),
    Failed,
}

/// Runs `jobs` (each the list of jobs it depends on, by index) with `work`, which gets a job's
/// index and its dependencies' results in the order listed. Returns every job's result, or
/// the first error. A dependency on a job that does not exist, or a cycle, is refused before
/// anything runs.
pub fn run_graph<T, E, F>(
    jobs: &[Vec<usize>],
    cancel: &Cancel,
    work: F,
) -> Result<Vec<Arc<T>>, GraphError<E>>
where
    T: Send + Sync,
    E: Send,
    F: Fn(usize, &[Arc<T>]) -> Result<T, E> + Sync,
{
    check_acyclic(jobs)?;
    let state = Mutex::new(State {
        slots: (0..jobs.len()).map(|_| Slot::Pending).collect(),
        error: None,
    });
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for (index, deps) in jobs.iter().enumerate() {
            let (state, changed, work) = (&state, &changed, &work);
            scope.spawn(move || {
                let inputs = match wait_for(state, changed, cancel, deps) {
                    Some(inputs) => inputs,
                    None => {
                        finish(state, changed, index, Slot::Failed, None);
                        return;
                    }
                };
                match work(index, &inputs) {
                    Ok(value) => finish(state, changed, index, Slot::Done(Arc::new(value)), None),
                    Err(error) => {
                        cancel.cancel();
                        finish(state, changed, index, Slot::Failed, Some(error));
                    }
                }
            });
        }
    });
    let state = match state.into_inner() {
        Ok(state) => state,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(error) = state.error {
        return Err(GraphError::Job(error));
    }
    let mut results = Vec::with_capacity(jobs.len());
    for slot in state.slots {
        match slot {
            Slot::Done(value) => results.push(value),
            _ => return Err(GraphError::Cancelled),
        }
    }
    Ok(results)
}

/// Why a graph did not finish.
#[derive(Debug)]
pub enum GraphError<E> {
    /// A job failed with this error (the first one to fail).
    Job(E),
    /// The build was cancelled from outside before every job finished.
    Cancelled,
    /// The jobs' dependencies are not a graph that can run.
    Invalid(String),
}

struct State<T, E> {
    slots: Vec<Slot<T>>,
    error: Option<E>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits until every dependency is done; `None` if one failed or the build was cancelled.
fn wait_for<T, E>(
    state: &Mutex<State<T, E>>,
    changed: &Condvar,
    cancel: &Cancel,
    deps: &[usize],
) -> Option<Vec<Arc<T>>> {
    let mut guard = lock(state);
    loop {
        if cancel.is_cancelled() {
            return None;
        }
        let mut inputs = Vec::with_capacity(deps.len());
        for &dep in deps {
            match &guard.slots[dep] {
                Slot::Done(value) => inputs.push(value.clone()),
                Slot::Failed => return None,
                Slot::Pending => break,
            }
        }
        if inputs.len() == deps.len() {
            return Some(inputs);
        }
        // Woken by every finished job; the timeout notices an outside cancellation.
        guard = match changed.wait_timeout(guard, std::time::Duration::from_millis(100)) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

fn finish<T, E>(
    state: &Mutex<State<T, E>>,
    changed: &Condvar,
    index: usize,
    slot: Slot<T>,
    error: Option<E>,
) {
    let mut guard = lock(state);
    guard.slots[index] = slot;
    if guard.error.is_none() {
        guard.error = error;
    }
    changed.notify_all();
}

fn check_acyclic<E>(jobs: &[Vec<usize>]) -> Result<(), GraphError<E>> {
    // 0 unvisited, 1 on the current path, 2 done.
    let mut marks = vec![0u8; jobs.len()];
    for start in 0..jobs.len() {
        let mut path = vec![(start, 0usize)];
        while let Some(&mut (job, ref mut next)) = path.last_mut() {
            if *next == 0 {
                if marks[job] == 2 {
                    path.pop();
                    continue;
                }
                marks[job] = 1;
            }
            match jobs[job].get(*next) {
                Some(&dep) => {
                    *next += 1;
                    if dep >= jobs.len() {
                        return Err(GraphError::Invalid(format!(
                            "job {job} depends on job {dep}, which does not exist"
                        )));
                    }
                    match marks[dep] {
                        1 => {
                            return Err(GraphError::Invalid(format!(
                                "jobs {job} and {dep} depend on each other"
                            )))
                        }
                        0 => path.push((dep, 0)),
                        _ => {}
                    }
                }
                None => {
                    marks[job] = 2;
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn dependencies_come_first_and_independent_jobs_overlap() {
        let cancel = Cancel::new();
        let started = Instant::now();
        // 0 and 1 are independent (each sleeps 200 ms); 2 needs both.
        let jobs = vec![vec![], vec![], vec![0, 1]];
        let results = run_graph(&jobs, &cancel, |index, inputs: &[Arc<u64>]| {
            if index < 2 {
                std::thread::sleep(Duration::from_millis(200));
                Ok::<u64, String>(index as u64 + 1)
            } else {
                Ok(inputs.iter().map(|v| **v).sum::<u64>() * 10)
            }
        })
        .unwrap();
        assert_eq!(*results[2], 30);
        assert!(started.elapsed() < Duration::from_millis(390));
    }

    #[test]
    fn a_failure_cancels_the_rest() {
        let cancel = Cancel::new();
        let jobs = vec![vec![], vec![], vec![1]];
        let result = run_graph(&jobs, &cancel, |index, _: &[Arc<()>]| match index {
            0 => Err("boom".to_string()),
            1 => {
                // A long job that watches the flag.
                for _ in 0..100 {
                    if cancel.is_cancelled() {
                        return Err("cancelled".to_string());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            }
            _ => panic!("job 2 must never start"),
        });
        match result {
            Err(GraphError::Job(message)) => assert_eq!(message, "boom"),
            _ => panic!("expected the first failure"),
        }
        assert!(cancel.is_cancelled());
    }

    #[test]
    fn cycles_and_unknown_jobs_are_refused() {
        let cancel = Cancel::new();
        let work = |_: usize, _: &[Arc<()>]| Ok::<(), ()>(());
        assert!(matches!(
            run_graph(&[vec![1], vec![0]], &cancel, work),
            Err(GraphError::Invalid(_))
        ));
        assert!(matches!(
            run_graph(&[vec![5]], &cancel, work),
            Err(GraphError::Invalid(_))
        ));
    }
}
