//! The `process` backend: each service is a child process of this binary,
//! `stagelib service NAME --listen 127.0.0.1:0 --data-dir DIR --ready-file FILE`.
//! (Being written.)
use async_trait::async_trait;
use std::path::PathBuf;

use super::{Backend, BackendError, StackSpec, StackStatus};
use crate::stack::StackEndpoints;

pub struct ProcessBackend {
    pub state_dir: PathBuf,
}

impl ProcessBackend {
    pub fn from_current_exe(state_dir: PathBuf) -> Result<Self, BackendError> {
        Ok(Self { state_dir })
    }
}

#[async_trait]
impl Backend for ProcessBackend {
    fn name(&self) -> &'static str {
        "process"
    }
    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError> {
        Err(BackendError::Other(format!("not implemented yet ({})", spec.stack_id)))
    }
    async fn destroy(&self, _stack_id: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn list(&self) -> Result<Vec<StackStatus>, BackendError> {
        Ok(vec![])
    }
}
