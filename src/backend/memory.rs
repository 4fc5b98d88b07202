//! The `memory` backend: stacks that exist only as records in memory, with no
//! services behind them. For tests and benchmarks of the lease core, where the
//! cost and behaviour of real services would only add noise. Faults can be
//! injected: a failing provision, a dead service, a vanished stack.
use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Backend, BackendError, ServiceHealth, StackSpec, StackStatus};
use crate::stack::{Endpoint, StackEndpoints};

#[derive(Debug, Default)]
pub struct MemoryBackend {
    stacks: Mutex<BTreeMap<String, StackStatus>>,
    fail_next: Mutex<Option<String>>,
    provisions: std::sync::atomic::AtomicU64,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StackStatus>> {
        self.stacks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `provision` fails with this reason.
    pub fn fail_next_provision(&self, reason: &str) {
        *self.fail_next.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.to_string());
    }

    /// Mark every service of the stack dead.
    pub fn kill(&self, stack_id: &str) {
        if let Some(s) = self.lock().get_mut(stack_id) {
            for h in s.services.values_mut() {
                *h = ServiceHealth::Dead {
                    reason: "killed by the test".into(),
                };
            }
        }
    }

    /// Forget the stack as if its resources vanished.
    pub fn vanish(&self, stack_id: &str) {
        self.lock().remove(stack_id);
    }

    /// Add a stack record no lease knows about.
    pub fn plant_orphan(&self, stack_id: &str) {
        self.lock().insert(
            stack_id.to_string(),
            StackStatus {
                stack_id: stack_id.to_string(),
                lease_id: None,
                services: BTreeMap::new(),
            },
        );
    }

    pub fn stack_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// How many times `provision` was called.
    pub fn provisions(&self) -> u64 {
        self.provisions.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError> {
        self.provisions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(reason) = self.fail_next.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(BackendError::Other(reason));
        }
        let mut services = BTreeMap::new();
        let mut health = BTreeMap::new();
        for (i, kind) in spec.template.services.iter().enumerate() {
            let credentials = spec
                .credentials
                .get(kind)
                .cloned()
                .ok_or_else(|| BackendError::Other(format!("no credentials for {kind}")))?;
            services.insert(
                *kind,
                Endpoint {
                    url: format!("memory://{}/{}#{i}", spec.stack_id, kind),
                    internal_url: None,
                    credentials,
                },
            );
            health.insert(*kind, ServiceHealth::Running);
        }
        self.lock().insert(
            spec.stack_id.clone(),
            StackStatus {
                stack_id: spec.stack_id.clone(),
                lease_id: Some(spec.lease_id),
                services: health,
            },
        );
        Ok(StackEndpoints { services })
    }

    async fn destroy(&self, stack_id: &str) -> Result<(), BackendError> {
        self.lock().remove(stack_id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StackStatus>, BackendError> {
        Ok(self.lock().values().cloned().collect())
    }
}
