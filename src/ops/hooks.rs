//! Running the hooks of a snapshot or restore and keeping what they did.

use crate::source::{run_hook, HookRun, HookSet};

/// Runs hooks with common environment variables and remembers each run.
pub(crate) struct HookRunner {
    env: Vec<(&'static str, String)>,
    /// Hooks run so far, in order.
    pub ran: Vec<HookRun>,
}

impl HookRunner {
    /// A runner adding `env` to every hook's environment.
    pub fn new(env: Vec<(&'static str, String)>) -> HookRunner {
        HookRunner {
            env,
            ran: Vec::new(),
        }
    }

    /// Runs `cmd` (when set) as hook `which` of `part` (`run` for the
    /// operation as a whole). `Err` holds the failure line.
    pub fn run(
        &mut self,
        set: &HookSet,
        part: &str,
        which: &str,
        cmd: &Option<String>,
        error: Option<&str>,
    ) -> std::result::Result<(), String> {
        let Some(cmd) = cmd else { return Ok(()) };
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("OPC_HOOK", which));
        if part != "run" {
            env.push(("OPC_COMPONENT", part));
        }
        if let Some(e) = error {
            env.push(("OPC_ERROR", e));
        }
        let r = run_hook(&format!("{part}.{which}"), cmd, &env, set.limit());
        let res = if r.ok { Ok(()) } else { Err(r.failure()) };
        self.ran.push(r);
        res
    }
}
