//! Several hosts behind one [`Backend`]: each stack is provisioned on the host
//! its lease was placed on (`StackSpec::host`, chosen by the store by free
//! capacity); destroy and list cover every host.
use std::sync::Arc;

use async_trait::async_trait;

use super::{Backend, BackendError, StackSpec, StackStatus};
use crate::stack::StackEndpoints;

pub struct MultiHost {
    hosts: Vec<(String, Arc<dyn Backend>)>,
}

impl MultiHost {
    /// `hosts` must not be empty; the first one also takes specs without a host.
    pub fn new(hosts: Vec<(String, Arc<dyn Backend>)>) -> Result<Self, BackendError> {
        if hosts.is_empty() {
            return Err(BackendError::Other("no hosts configured".into()));
        }
        Ok(Self { hosts })
    }

    fn pick(&self, host: Option<&str>) -> Result<&Arc<dyn Backend>, BackendError> {
        match host {
            None | Some("local") => Ok(&self.hosts[0].1),
            Some(h) => self.hosts.iter().find(|(n, _)| n == h).map(|(_, b)| b).ok_or_else(|| {
                let known: Vec<&str> = self.hosts.iter().map(|(n, _)| n.as_str()).collect();
                BackendError::Other(format!(
                    "the lease is placed on host `{h}`, which is not configured here (docker_hosts: {})",
                    known.join(", ")
                ))
            }),
        }
    }
}

#[async_trait]
impl Backend for MultiHost {
    fn name(&self) -> &'static str {
        self.hosts[0].1.name()
    }

    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError> {
        self.pick(spec.host.as_deref())?.provision(spec).await
    }

    async fn destroy(&self, stack_id: &str) -> Result<(), BackendError> {
        let mut first_error = None;
        for (_, b) in &self.hosts {
            if let Err(e) = b.destroy(stack_id).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn list(&self) -> Result<Vec<StackStatus>, BackendError> {
        let mut out = Vec::new();
        for (_, b) in &self.hosts {
            out.extend(b.list().await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::lease::{LeaseId, Namespace};
    use crate::stack::Template;

    fn spec(host: &str) -> StackSpec {
        StackSpec {
            stack_id: format!("s-{host}"),
            lease_id: LeaseId::new(),
            owner: "o".into(),
            namespace: Namespace::parse("o").expect("ns"),
            template: Template::default_template(),
            credentials: crate::manager::ManagerKey::from_bytes(b"k".to_vec())
                .credentials(&format!("s-{host}"), &Template::default_template()),
            host: Some(host.into()),
        }
    }

    #[tokio::test]
    async fn stacks_go_to_their_host_and_destroy_reaches_all() {
        let a = Arc::new(MemoryBackend::new());
        let b = Arc::new(MemoryBackend::new());
        let multi = MultiHost::new(vec![
            ("a".into(), a.clone() as Arc<dyn Backend>),
            ("b".into(), b.clone()),
        ])
        .expect("hosts");
        multi.provision(&spec("b")).await.expect("on b");
        assert!(a.stack_ids().is_empty());
        assert_eq!(b.stack_ids(), vec!["s-b".to_string()]);
        let e = multi.provision(&spec("c")).await.expect_err("unknown host");
        assert!(e.to_string().contains("`c`"), "{e}");
        assert_eq!(multi.list().await.expect("list").len(), 1);
        multi.destroy("s-b").await.expect("destroy");
        assert!(b.stack_ids().is_empty());
    }
}
