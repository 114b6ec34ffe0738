//! [`SharedScript`]: one of the engine's scripts, loaded once and run by SHA1 from every task.

use std::sync::{Arc, Mutex};

use switchboard_protocol::redis::engine::Script;
use switchboard_protocol::redis::{Command, RedisError, Reply};

use crate::redis::RedisClient;

/// A [`Script`] shared by the tasks that run it.
#[derive(Debug, Clone)]
pub(crate) struct SharedScript {
    script: Arc<Mutex<Script>>,
}

impl SharedScript {
    pub(crate) fn new(source: &'static str) -> SharedScript {
        SharedScript {
            script: Arc::new(Mutex::new(Script::new(source))),
        }
    }

    /// Runs the command `build` makes from the script: by SHA1 once loaded (loading it first if it is not),
    /// by its source again after a `NOSCRIPT` (which ran nothing, so repeating is safe).
    pub(crate) async fn run(
        &self,
        client: &RedisClient,
        build: impl Fn(&Script) -> Command,
    ) -> Result<Reply, RedisError> {
        let unloaded = self.with(|script| (!script.is_loaded()).then(|| script.load_command()));
        if let Some(load) = unloaded {
            // A failed load leaves the script to be sent by its source; the command below says what went wrong.
            if let Ok(reply) = client.request(load).await {
                self.with(|script| script.handle_loaded(&reply).ok());
            }
        }
        let mut retried = false;
        loop {
            let command = self.with(|script| build(script));
            match client.request(command).await {
                Err(RedisError::Refused(message))
                    if !retried && self.with(|script| script.handle_refused(&message)) =>
                {
                    retried = true;
                }
                other => return other,
            }
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        let mut script = self
            .script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut script)
    }
}
