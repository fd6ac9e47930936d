//! Cancellation shared by every worker of a build: Ctrl-C, SIGTERM or a failed stage sets it,
//! and whatever is running is told at once through the hooks it registered (a sandbox's
//! killer), while loops between steps check [`Cancel::is_cancelled`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Hook = Box<dyn Fn() + Send + Sync>;

/// A cancellation flag with hooks. Cheap to clone; all clones share the flag.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    next_hook: AtomicU64,
    hooks: Mutex<Vec<(u64, Hook)>>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Sets the flag and runs every registered hook (once: later calls do nothing).
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let hooks = match self.inner.hooks.lock() {
            Ok(hooks) => hooks,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (_, hook) in hooks.iter() {
            hook();
        }
    }

    /// Runs `hook` when the build is cancelled while the returned guard lives (at once if it
    /// already is).
    pub fn on_cancel(&self, hook: impl Fn() + Send + Sync + 'static) -> HookGuard {
        let id = self.inner.next_hook.fetch_add(1, Ordering::Relaxed);
        {
            let mut hooks = match self.inner.hooks.lock() {
                Ok(hooks) => hooks,
                Err(poisoned) => poisoned.into_inner(),
            };
            hooks.push((id, Box::new(hook)));
        }
        if self.is_cancelled() {
            let hooks = match self.inner.hooks.lock() {
                Ok(hooks) => hooks,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some((_, hook)) = hooks.iter().find(|(i, _)| *i == id) {
                hook();
            }
        }
        HookGuard {
            cancel: self.clone(),
            id,
        }
    }
}

/// Unregisters its hook when dropped.
pub struct HookGuard {
    cancel: Cancel,
    id: u64,
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        let mut hooks = match self.cancel.inner.hooks.lock() {
            Ok(hooks) => hooks,
            Err(poisoned) => poisoned.into_inner(),
        };
        hooks.retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_while_registered() {
        let cancel = Cancel::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let guard = cancel.on_cancel(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let dropped_calls = calls.clone();
        drop(cancel.on_cancel(move || {
            dropped_calls.fetch_add(100, Ordering::SeqCst);
        }));
        cancel.cancel();
        cancel.cancel();
        assert!(cancel.is_cancelled());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(guard);
        let late = calls.clone();
        let _late = cancel.on_cancel(move || {
            late.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(calls.load(Ordering::SeqCst), 11);
    }
}
