//! `switchboard demo`: a simulated ML pipeline on `projects/<project>`. It publishes every pipeline event type of
//! PROTOCOL §5 as `{event_type, timestamp, data}` — stage transitions, progress, logs, a recoverable error, a
//! decision, an approval request, and `pipeline_completed` or `pipeline_failed` — and serves calls on the same
//! channel: `cancel` stops it, `approve` answers the approval request, `status` tells where it is. Stage
//! transitions and the final event are retained, so `switchboard state` shows where the pipeline stands.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard_protocol::time::format_iso8601_millis;
use switchboard_protocol::wire::ChannelName;
use switchboard_protocol::wire::project_stream::{PipelineEventType as Kind, pipeline_event};
use switchboard_runtime::client::{CallStream, Client, HandlerError, IncomingCall};

use crate::args::DemoArgs;
use crate::connect::{Patience, client, connected};
use crate::error::CliError;
use crate::signals::Shutdown;

/// The stages and how many progress steps each takes.
const STAGES: [(&str, u32); 5] = [
    ("data_ingestion", 4),
    ("preprocessing", 3),
    ("training", 6),
    ("evaluation", 3),
    ("deployment", 3),
];

/// One step at speed 1.
const STEP: Duration = Duration::from_millis(400);

/// How many steps the approval request waits before approving itself.
const APPROVAL_STEPS: f64 = 10.0;

/// How a run ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    Completed,
    Cancelled,
    Failed,
    Interrupted,
}

/// Why the stages stopped early.
#[derive(Debug)]
enum Stop {
    /// A `cancel` call.
    Cancelled {
        caller: Option<String>,
        reason: Value,
    },
    /// `--fail`.
    Simulated(String),
    /// Publishing failed.
    Client(CliError),
}

impl From<CliError> for Stop {
    fn from(e: CliError) -> Self {
        Stop::Client(e)
    }
}

/// Runs the demo until it completes, is cancelled, or a signal comes. Exits 0 in all three cases: a cancelled or
/// `--fail`ed pipeline is the demo working.
pub async fn demo(args: DemoArgs) -> Result<(), CliError> {
    let channel = format!("projects/{}", args.project);
    ChannelName::new(&channel)
        .map_err(|e| CliError::Usage(format!("invalid project {:?}: {e}", args.project)))?;
    let client = client(&args.url, &args.connection, Patience::LongRunning)?;
    let mut shutdown = Shutdown::install()?;
    let step = STEP.div_f64(args.speed);
    let run = async {
        let mut states = client.state_changes();
        tracing::info!(url = %args.url, "waiting for the server");
        connected(&mut states).await?;
        let calls = client.serve(&channel).await?;
        tracing::info!(
            %channel,
            "serving cancel, approve and status; try: switchboard call {} {channel} cancel '{{}}'",
            args.url
        );
        let mut pipeline = Pipeline {
            client: &client,
            channel: channel.clone(),
            calls,
            step,
            fail: args.fail,
            stage: "starting",
            progress: 0.0,
            awaiting_approval: false,
            approved_by: None,
        };
        pipeline.run().await
    };
    let outcome = futures_lite::future::or(run, async {
        shutdown.wait().await;
        Ok(Outcome::Interrupted)
    })
    .await;
    client.close().await;
    let outcome = outcome?;
    tracing::info!(?outcome, "demo finished");
    Ok(())
}

/// The pipeline's run.
struct Pipeline<'a> {
    client: &'a Client,
    channel: String,
    calls: CallStream,
    step: Duration,
    fail: bool,
    stage: &'static str,
    /// Within the current stage, 0 to 1.
    progress: f64,
    awaiting_approval: bool,
    /// Set by an `approve` call: who approved.
    approved_by: Option<String>,
}

impl Pipeline<'_> {
    async fn run(&mut self) -> Result<Outcome, CliError> {
        let started = Instant::now();
        match self.stages().await {
            Ok(()) => {
                let duration_ms = started.elapsed().as_millis() as u64;
                let data = json!({"duration_ms": duration_ms, "stages": STAGES.len(),
                                  "metrics": {"accuracy": 0.931, "f1": 0.914}, "model": "demo-model:v1"});
                self.emit(Kind::PipelineCompleted, data, true).await?;
                Ok(Outcome::Completed)
            }
            Err(Stop::Cancelled { caller, reason }) => {
                let stage = self.stage;
                self.emit(
                    Kind::StageTransition,
                    json!({"stage": stage, "status": "cancelled"}),
                    false,
                )
                .await?;
                let data = json!({"stage": stage, "reason": "cancelled", "details": reason,
                                  "cancelled_by": caller, "recoverable": false});
                self.emit(Kind::PipelineFailed, data, true).await?;
                Ok(Outcome::Cancelled)
            }
            Err(Stop::Simulated(why)) => {
                let stage = self.stage;
                self.emit(
                    Kind::StageTransition,
                    json!({"stage": stage, "status": "failed"}),
                    false,
                )
                .await?;
                let data = json!({"stage": stage, "reason": why, "recoverable": false});
                self.emit(Kind::PipelineFailed, data, true).await?;
                Ok(Outcome::Failed)
            }
            Err(Stop::Client(e)) => Err(e),
        }
    }

    async fn stages(&mut self) -> Result<(), Stop> {
        self.log("info", "pipeline started: 5 stages").await?;
        for (index, (stage, steps)) in STAGES.into_iter().enumerate() {
            self.stage = stage;
            self.progress = 0.0;
            let data = json!({"stage": stage, "status": "started", "index": index, "total_stages": STAGES.len()});
            self.emit(Kind::StageTransition, data, true).await?;
            self.log("info", &format!("{stage} started")).await?;
            if stage == "deployment" {
                self.approval().await?;
            }
            for step in 1..=steps {
                self.pause(1.0).await?;
                self.progress = f64::from(step) / f64::from(steps);
                let data = json!({"stage": stage, "progress": self.progress,
                                  "message": step_message(stage, step, steps)});
                self.emit(Kind::ProgressUpdate, data, false).await?;
                if stage == "training" && step == 3 {
                    let data = json!({"stage": stage, "error": "GPU out of memory on batch 412; retried with half the batch",
                                      "recoverable": true});
                    self.emit(Kind::Error, data, false).await?;
                }
                if stage == "training" && step == 4 && self.fail {
                    return Err(Stop::Simulated(
                        "training diverged: loss is NaN (--fail)".to_owned(),
                    ));
                }
            }
            if stage == "evaluation" {
                let data = json!({"stage": stage, "decision": "promote",
                                  "reason": "accuracy 0.931 is above the 0.90 threshold",
                                  "metrics": {"accuracy": 0.931, "f1": 0.914}});
                self.emit(Kind::Decision, data, false).await?;
            }
            let data = json!({"stage": stage, "status": "completed", "index": index, "total_stages": STAGES.len()});
            self.emit(Kind::StageTransition, data, true).await?;
        }
        self.log("info", "pipeline finished").await?;
        Ok(())
    }

    /// Asks for approval and waits for an `approve` call, approving itself after a while.
    async fn approval(&mut self) -> Result<(), Stop> {
        let wait = self.step.mul_f64(APPROVAL_STEPS);
        let data = json!({"stage": self.stage, "message": "Deploy demo-model:v1 to production?",
                          "approve_with": format!("switchboard call <url> {} approve", self.channel),
                          "auto_approve_after_ms": wait.as_millis() as u64});
        self.emit(Kind::ApprovalRequired, data, false).await?;
        self.awaiting_approval = true;
        let paused = self.pause(APPROVAL_STEPS).await;
        self.awaiting_approval = false;
        paused?;
        let (decision, by) = match self.approved_by.take() {
            Some(by) => ("approved", Value::String(by)),
            None => ("auto_approved", Value::Null),
        };
        let data = json!({"stage": self.stage, "decision": decision, "approved_by": by});
        self.emit(Kind::Decision, data, false).await?;
        Ok(())
    }

    /// Waits `steps` steps, answering calls meanwhile. Returns early on `cancel` (as [`Stop::Cancelled`]) and, while
    /// awaiting approval, on `approve`.
    async fn pause(&mut self, steps: f64) -> Result<(), Stop> {
        let deadline = Instant::now() + self.step.mul_f64(steps);
        loop {
            let calls = &mut self.calls;
            let next = futures_lite::future::or(async { Some(calls.next().await) }, async {
                smol::Timer::at(deadline).await;
                None
            })
            .await;
            let call = match next {
                None => return Ok(()),
                Some(Some(call)) => call,
                Some(None) => {
                    return Err(Stop::Client(CliError::Failed(
                        "the client stopped while the pipeline ran".to_owned(),
                    )));
                }
            };
            if let Some(stop) = self.answer(call) {
                return stop;
            }
        }
    }

    /// Answers one call; `Some` when it ends the pause.
    fn answer(&mut self, call: IncomingCall) -> Option<Result<(), Stop>> {
        // The token's `sub`, else the API key's name, else the caller's app id.
        let by = call.caller().map(|c| c.name().to_owned());
        tracing::info!(method = %call.method, caller = ?call.caller(), "call");
        match call.method.as_str() {
            "cancel" => {
                let answer = json!({"cancelled": true, "stage": self.stage});
                call.responder.respond(Ok(answer));
                tracing::info!(
                    stage = self.stage,
                    "cancelled by {}",
                    by.as_deref().unwrap_or("someone")
                );
                Some(Err(Stop::Cancelled {
                    caller: by,
                    reason: call.params,
                }))
            }
            "approve" if self.awaiting_approval => {
                call.responder
                    .respond(Ok(json!({"approved": true, "stage": self.stage})));
                let by = by.unwrap_or_else(|| "someone".to_owned());
                tracing::info!(stage = self.stage, "approved by {by}");
                self.approved_by = Some(by);
                Some(Ok(()))
            }
            "approve" => {
                call.responder.respond(Err(HandlerError::new(
                    "VALIDATION_ERROR",
                    "nothing is awaiting approval",
                )));
                None
            }
            "status" => {
                let answer = json!({"stage": self.stage, "progress": self.progress,
                                    "awaiting_approval": self.awaiting_approval});
                call.responder.respond(Ok(answer));
                None
            }
            other => {
                call.responder.respond(Err(HandlerError::new(
                    "VALIDATION_ERROR",
                    format!("unknown method {other:?}; try cancel, approve or status"),
                )));
                None
            }
        }
    }

    async fn log(&self, level: &str, message: &str) -> Result<(), CliError> {
        let data = json!({"level": level, "stage": self.stage, "message": message});
        self.emit(Kind::Log, data, false).await
    }

    async fn emit(&self, kind: Kind, data: Value, retain: bool) -> Result<(), CliError> {
        let event = pipeline_event(kind, Some(now_iso8601()), data);
        let offset = self.client.publish(&self.channel, event, retain).await?;
        tracing::info!(
            offset,
            event_type = kind.as_str(),
            stage = self.stage,
            "published"
        );
        Ok(())
    }
}

fn step_message(stage: &str, step: u32, steps: u32) -> String {
    match stage {
        "data_ingestion" => format!("read shard {step}/{steps}"),
        "preprocessing" => format!("transformed batch {step}/{steps}"),
        "training" => format!("epoch {step}/{steps}"),
        "evaluation" => format!("evaluated split {step}/{steps}"),
        _ => format!("rolled out to {}% of replicas", step * 100 / steps),
    }
}

fn now_iso8601() -> String {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format_iso8601_millis(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_messages_name_the_step() {
        assert_eq!(step_message("training", 2, 6), "epoch 2/6");
        assert_eq!(
            step_message("deployment", 3, 3),
            "rolled out to 100% of replicas"
        );
        assert!(now_iso8601().ends_with('Z'));
    }
}
