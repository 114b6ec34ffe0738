//! `sub --progress`: pipeline events read as stage progress ([`interpret`]), drawn as one indicatif bar per stage
//! ([`Board`]). Other events print as lines above the bars. Without a terminal the bars are hidden, so stage
//! changes and notes print as plain lines instead.

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

/// What one channel event means for the display.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A stage changed status.
    Stage {
        /// The stage.
        stage: String,
        /// Its new status.
        status: StageStatus,
    },
    /// Progress within a stage.
    Progress {
        /// The stage.
        stage: String,
        /// 0 to 100.
        percent: u64,
        /// What it is doing.
        message: Option<String>,
    },
    /// Anything else: a line to print.
    Note(String),
}

/// A stage's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageStatus {
    /// Running.
    Started,
    /// Done.
    Completed,
    /// Ended badly (failed, cancelled…), with the word the event used.
    Ended(String),
}

impl StageStatus {
    fn word(&self) -> &str {
        match self {
            StageStatus::Started => "started",
            StageStatus::Completed => "completed",
            StageStatus::Ended(word) => word,
        }
    }
}

/// Reads a channel event. Pipeline events are `{event_type, timestamp?, data}` (PROTOCOL §5); a stage is named by
/// `data.stage` (or `to_stage` / `to`), progress by `data.progress` (a fraction, or a percentage above 1),
/// `data.percent`, or `data.current` of `data.total`.
pub fn interpret(event: &Value) -> Update {
    let Some(event_type) = event.get("event_type").and_then(Value::as_str) else {
        return Update::Note(event.to_string());
    };
    let data = event.get("data").unwrap_or(&Value::Null);
    let stage = ["stage", "to_stage", "to"]
        .iter()
        .find_map(|key| data.get(key).and_then(Value::as_str))
        .map(str::to_owned);
    match (event_type, stage) {
        ("stage_transition", Some(stage)) => {
            let status = match data
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("started")
            {
                "started" | "running" | "in_progress" => StageStatus::Started,
                "completed" | "done" | "succeeded" | "success" => StageStatus::Completed,
                other => StageStatus::Ended(other.to_owned()),
            };
            Update::Stage { stage, status }
        }
        ("progress_update", stage) => match percent(data) {
            Some(percent) => Update::Progress {
                stage: stage.unwrap_or_else(|| "pipeline".to_owned()),
                percent,
                message: data
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            None => Update::Note(format!("{event_type}: {data}")),
        },
        (_, _) => Update::Note(format!("{event_type}: {}", summary(data))),
    }
}

fn percent(data: &Value) -> Option<u64> {
    let number = |key: &str| data.get(key).and_then(Value::as_f64);
    let value = if let Some(p) = number("progress") {
        if p <= 1.0 { p * 100.0 } else { p }
    } else if let Some(p) = number("percent") {
        p
    } else {
        let (current, total) = (number("current")?, number("total")?);
        if total <= 0.0 {
            return None;
        }
        current / total * 100.0
    };
    value
        .is_finite()
        .then(|| value.clamp(0.0, 100.0).round() as u64)
}

/// The most telling field of an event's data, or all of it.
fn summary(data: &Value) -> String {
    ["message", "reason", "decision", "error"]
        .iter()
        .find_map(|key| data.get(key).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| data.to_string())
}

/// The bars, one per stage in the order stages first appear.
pub struct Board {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    style: ProgressStyle,
}

impl Board {
    /// An empty board drawing on stderr.
    pub fn new() -> Board {
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:32}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        Board {
            multi: MultiProgress::new(),
            bars: HashMap::new(),
            style,
        }
    }

    /// Shows what a channel event means.
    pub fn show(&mut self, channel: &str, event: &Value) {
        match interpret(event) {
            Update::Stage { stage, status } => {
                let line = format!("{channel}: {stage} {}", status.word());
                let bar = self.bar(&stage);
                match status {
                    StageStatus::Started => bar.set_message("running"),
                    StageStatus::Completed => {
                        bar.set_position(100);
                        bar.finish_with_message("done");
                    }
                    StageStatus::Ended(word) => bar.abandon_with_message(word),
                }
                self.plain(line);
            }
            Update::Progress {
                stage,
                percent,
                message,
            } => {
                let bar = self.bar(&stage);
                bar.set_position(percent);
                if let Some(message) = message {
                    bar.set_message(message);
                }
            }
            Update::Note(line) => self.note(format!("{channel}: {line}")),
        }
    }

    /// Prints a line above the bars (or plainly, without a terminal).
    pub fn note(&self, line: String) {
        if self.multi.is_hidden() || self.multi.println(&line).is_err() {
            eprintln!("{line}");
        }
    }

    /// Prints a line only when the bars are hidden, where it stands in for them.
    fn plain(&self, line: String) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        }
    }

    fn bar(&mut self, stage: &str) -> ProgressBar {
        if let Some(bar) = self.bars.get(stage) {
            return bar.clone();
        }
        let bar = self.multi.add(ProgressBar::new(100));
        bar.set_style(self.style.clone());
        bar.set_prefix(stage.to_owned());
        self.bars.insert(stage.to_owned(), bar.clone());
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stage_transitions_become_stage_updates() {
        let started = json!({"event_type": "stage_transition", "data": {"stage": "training", "status": "started"}});
        assert_eq!(
            interpret(&started),
            Update::Stage {
                stage: "training".into(),
                status: StageStatus::Started
            }
        );
        let done = json!({"event_type": "stage_transition", "data": {"to_stage": "eval", "status": "completed"}});
        assert_eq!(
            interpret(&done),
            Update::Stage {
                stage: "eval".into(),
                status: StageStatus::Completed
            }
        );
        let cancelled = json!({"event_type": "stage_transition", "data": {"stage": "x", "status": "cancelled"}});
        assert_eq!(
            interpret(&cancelled),
            Update::Stage {
                stage: "x".into(),
                status: StageStatus::Ended("cancelled".into())
            }
        );
        let no_stage = json!({"event_type": "stage_transition", "data": {}});
        assert!(matches!(interpret(&no_stage), Update::Note(_)));
    }

    #[test]
    fn progress_comes_as_fraction_percent_or_count() {
        let cases = [
            (
                json!({"stage": "s", "progress": 0.25, "message": "epoch 1"}),
                25,
            ),
            (json!({"stage": "s", "progress": 40}), 40),
            (json!({"stage": "s", "percent": 99.6}), 100),
            (json!({"stage": "s", "current": 3, "total": 4}), 75),
            (json!({"stage": "s", "progress": 7.5e9}), 100),
        ];
        for (data, want) in cases {
            let event = json!({"event_type": "progress_update", "data": data});
            match interpret(&event) {
                Update::Progress { stage, percent, .. } => {
                    assert_eq!((stage.as_str(), percent), ("s", want), "{event}");
                }
                other => panic!("{other:?}"),
            }
        }
        let unnamed = json!({"event_type": "progress_update", "data": {"progress": 0.5}});
        assert!(
            matches!(interpret(&unnamed), Update::Progress { ref stage, percent: 50, .. } if stage == "pipeline")
        );
        let useless = json!({"event_type": "progress_update", "data": {"current": 1, "total": 0}});
        assert!(matches!(interpret(&useless), Update::Note(_)));
    }

    #[test]
    fn everything_else_is_a_note() {
        let log = json!({"event_type": "log", "data": {"level": "info", "message": "hello"}});
        assert_eq!(interpret(&log), Update::Note("log: hello".into()));
        let decision = json!({"event_type": "decision", "data": {"decision": "promote"}});
        assert_eq!(
            interpret(&decision),
            Update::Note("decision: promote".into())
        );
        let plain = json!({"n": 1});
        assert_eq!(interpret(&plain), Update::Note("{\"n\":1}".into()));
    }
}
