//! A plan as people read it (`distill plan`): the target, then each stage to build in order
//! with its base, platform and instructions by line number, then the stages skipped.

use std::fmt::{self, Write as _};

use crate::instruction::{Command, Instruction};
use crate::plan::{Base, Input, Plan, Stage, Via};

/// Longest instruction text shown on one line before it is cut.
const TEXT_WIDTH: usize = 110;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.target_stage();
        let last = self.target == self.stages.len() - 1;
        writeln!(f, "plan for {}", self.source.name)?;
        writeln!(
            f,
            "target: {}{}",
            stage_label(target),
            if last { " (the last stage)" } else { "" }
        )?;
        writeln!(
            f,
            "platform: {} (building on {})",
            self.target_platform, self.build_platform
        )?;
        if !self.global_decls.is_empty() {
            let args: Vec<String> = self
                .global_decls
                .iter()
                .map(|decl| match self.global_args.get(&decl.name.value) {
                    Some(value) => format!("{}={}", decl.name.value, value),
                    None => format!("{} (unset)", decl.name.value),
                })
                .collect();
            writeln!(f, "global args: {}", args.join(" "))?;
        }
        if !self.build_args.is_empty() {
            let args: Vec<String> = self
                .build_args
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            writeln!(f, "build args: {}", args.join(" "))?;
        }
        let images = self.images_read();
        if !images.is_empty() {
            writeln!(f, "images read: {}", images.join(", "))?;
        }
        let width = self
            .stages
            .iter()
            .flat_map(|s| s.instructions.iter().chain(&s.triggers))
            .map(|i| i.start_line)
            .max()
            .unwrap_or(1)
            .to_string()
            .len();

        for stage in self.stages_to_build() {
            writeln!(f)?;
            write!(f, "{}  FROM {}", stage_label(stage), self.base_text(stage))?;
            write!(f, "  [{}]  line {}", stage.platform, stage.from.pos.line)?;
            if stage.index == self.target {
                write!(f, "  (target)")?;
            }
            writeln!(f)?;
            for trigger in &stage.triggers {
                let note = format!("ONBUILD of the base: {}", one_line(&trigger.original));
                writeln!(f, "  {:>width$}  {}", trigger.start_line, note)?;
                self.write_reads(f, stage, trigger, width)?;
            }
            for instruction in &stage.instructions {
                let text = one_line(&instruction.original);
                writeln!(f, "  {:>width$}  {}", instruction.start_line, text)?;
                self.write_reads(f, stage, instruction, width)?;
            }
        }

        let skipped: Vec<&Stage> = self.stages.iter().filter(|s| !s.reachable).collect();
        if !skipped.is_empty() {
            writeln!(f)?;
            writeln!(f, "skipped (the target does not need them):")?;
            for stage in skipped {
                writeln!(
                    f,
                    "  {}  FROM {}  line {}",
                    stage_label(stage),
                    self.base_text(stage),
                    stage.from.pos.line
                )?;
            }
        }
        Ok(())
    }
}

impl Plan {
    fn base_text(&self, stage: &Stage) -> String {
        let Command::From(from) = &stage.from.command else {
            return stage.base_name.clone();
        };
        let mut text = match &stage.base {
            Base::Scratch => "scratch".to_string(),
            Base::Image(reference) => reference.clone(),
            Base::Stage(parent) => stage_label(&self.stages[*parent]),
        };
        if from.image.value != stage.base_name {
            let _ = write!(text, " (from {})", from.image.value);
        }
        text
    }

    /// One line under an instruction for each stage or image it reads.
    fn write_reads(
        &self,
        f: &mut fmt::Formatter<'_>,
        stage: &Stage,
        instruction: &Instruction,
        width: usize,
    ) -> fmt::Result {
        let lines = instruction.start_line..=instruction.end_line;
        for dependency in &stage.dependencies {
            if !lines.contains(&dependency.written.pos.line) {
                continue;
            }
            let what = match &dependency.input {
                Input::Stage(index) => stage_label(&self.stages[*index]),
                Input::Image(reference) => format!("image {reference}"),
                Input::Scratch => "scratch".to_string(),
            };
            let how = match dependency.via {
                Via::CopyFrom => "copies from",
                Via::MountFrom => "mounts",
            };
            writeln!(f, "  {:>width$}    {how} {what}", "")?;
        }
        Ok(())
    }
}

fn stage_label(stage: &Stage) -> String {
    match &stage.name {
        Some(name) => format!("stage {} {:?}", stage.index, name),
        None => format!("stage {}", stage.index),
    }
}

/// The first line of an instruction's text, runs of blanks (left by joined continuation
/// lines) shown as one space, cut to [`TEXT_WIDTH`] characters.
fn one_line(original: &str) -> String {
    let first = original.lines().next().unwrap_or("");
    let more = original.trim_end().contains('\n');
    let words: Vec<&str> = first.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let joined = words.join(" ");
    let mut text: String = joined.chars().take(TEXT_WIDTH).collect();
    if joined.chars().count() > TEXT_WIDTH || more {
        text.push_str(" ...");
    }
    text
}
