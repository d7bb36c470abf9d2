//! The registered model: actor kinds with their commands and events, and the policies between
//! them. Tools and documentation read it through [`Runtime::model`](crate::Runtime::model).

use std::fmt;

use serde::Serialize;

/// Everything registered in a runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Model {
    /// The actor kinds, sorted by name.
    pub kinds: Vec<KindModel>,
    /// The policies, in registration order.
    pub policies: Vec<PolicyModel>,
}

/// One registered actor kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindModel {
    /// The kind name.
    pub kind: &'static str,
    /// The command names it accepts.
    pub commands: Vec<&'static str>,
    /// The event names it stores.
    pub events: Vec<&'static str>,
    /// The schema version of its state.
    pub state_schema_version: u32,
    /// Events between snapshots, if snapshots by count are on.
    pub snapshot_every: Option<u64>,
}

/// One registered policy: events of `source` become commands to `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyModel {
    /// The policy's name, which also names its checkpoint.
    pub name: String,
    /// The kind whose events it reads.
    pub source: &'static str,
    /// The kind it sends commands to.
    pub target: &'static str,
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for kind in &self.kinds {
            writeln!(f, "{}", kind.kind)?;
            writeln!(f, "  commands: {}", kind.commands.join(", "))?;
            writeln!(f, "  events:   {}", kind.events.join(", "))?;
        }
        for policy in &self.policies {
            writeln!(
                f,
                "policy {}: {} events -> {} commands",
                policy.name, policy.source, policy.target
            )?;
        }
        Ok(())
    }
}
