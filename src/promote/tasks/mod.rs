//! The release tasks, run against a lease's endpoints (nothing hard-coded: every
//! host comes from [`StackEndpoints`], every name from [`Names`], which goes
//! through the lease's namespace).
//!
//! Tasks whose upstream counterpart needs something a staging stack does not
//! have (a hg repository, GPG keys, email) are **simulated**: they log what they
//! would do and say so in their summary.
mod balrog;
mod beetmover;
mod bouncer;
mod ship;
mod verify;

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::exec::{TaskError, TaskLog, TaskRunner};
use super::graph::{Release, TaskDef};
use crate::clients::balrog::BalrogClient;
use crate::clients::bouncer::BouncerClient;
use crate::clients::http::RetryPolicy;
use crate::seed::mar::MarSpec;
use crate::seed::namespace::{NameKind, Namespacer};
use crate::stack::{Endpoint, ServiceKind, StackEndpoints, RELEASES_BUCKET};

/// Every name a release writes, namespaced.
#[derive(Debug, Clone)]
pub struct Names {
    pub ns: Namespacer,
    pub release: Release,
}

impl Names {
    fn r(&self) -> &Release {
        &self.release
    }

    /// `Firefox-158.0b5-build1` (+ namespace suffix).
    pub fn blob_of(&self, version: &str, build: u32) -> String {
        self.ns.apply(
            NameKind::Release,
            &format!("{}-{version}-build{build}", self.r().title()),
        )
    }

    pub fn blob(&self) -> String {
        self.blob_of(&self.r().version, self.r().build_number)
    }

    pub fn shipit_release(&self) -> String {
        self.ns.apply(
            NameKind::ShipitRelease,
            &format!(
                "{}-{}-build{}",
                self.r().title(),
                self.r().version,
                self.r().build_number
            ),
        )
    }

    /// The live channel of the release's family (`beta`, `release`, `esr`, `aurora`).
    pub fn family_channel(&self) -> &'static str {
        if self.r().product == "devedition" {
            return "aurora";
        }
        match self.r().release_type.as_str() {
            "release" => "release",
            t if t.starts_with("esr") => "esr",
            _ => "beta",
        }
    }

    /// `<channel><suffix>`, namespaced (`alice-beta-localtest`).
    pub fn channel(&self, suffix: &str) -> String {
        self.ns
            .apply(NameKind::Channel, &format!("{}{suffix}", self.family_channel()))
    }

    /// Rule alias of `<channel><suffix>` (`alice-firefox-beta-localtest`).
    pub fn rule_alias(&self, suffix: &str) -> String {
        let prefix = if self.r().product == "devedition" {
            "devedition"
        } else {
            "firefox"
        };
        self.ns.apply(
            NameKind::RuleAlias,
            &format!("{prefix}-{}{suffix}", self.family_channel()),
        )
    }

    /// `pub/firefox/candidates/158.0b5-candidates/build1` (namespaced).
    pub fn candidates_dir(&self) -> String {
        let r = self.r();
        self.ns.apply(
            NameKind::S3Key,
            &format!(
                "pub/{}/candidates/{}-candidates/build{}",
                r.product, r.version, r.build_number
            ),
        )
    }

    /// `pub/firefox/releases/158.0b5` (namespaced).
    pub fn releases_dir(&self) -> String {
        let r = self.r();
        self.ns
            .apply(NameKind::S3Key, &format!("pub/{}/releases/{}", r.product, r.version))
    }

    /// A bouncer product `<Title>-<V><suffix>` (`suffix` like `-Complete`), namespaced.
    pub fn bouncer_product(&self, suffix: &str) -> String {
        self.ns.apply(
            NameKind::BouncerProduct,
            &format!("{}-{}{suffix}", self.r().title(), self.r().version),
        )
    }

    /// The bouncer alias prefix of the family (`firefox-beta`, `firefox`, …).
    pub fn alias(&self, suffix: &str) -> String {
        let base = match (self.r().product.as_str(), self.family_channel()) {
            ("devedition", _) => "firefox-devedition",
            (_, "release") => "firefox",
            (_, "esr") => "firefox-esr",
            _ => "firefox-beta",
        };
        self.ns.apply(NameKind::BouncerAlias, &format!("{base}{suffix}"))
    }

    /// A bouncer location path (`/firefox/releases/…`, namespaced).
    pub fn releases_path(&self, rest: &str) -> String {
        let r = self.r();
        format!(
            "/{}",
            self.ns
                .apply(NameKind::S3Key, &format!("{}/releases/{}/{rest}", r.product, r.version))
        )
    }
}

/// Where build artifacts come from.
#[derive(Debug, Clone)]
pub enum Artifacts {
    /// Valid MARs generated for the release (`seed::mar`).
    Synthetic,
    /// A directory laid out like the candidates directory (`update/<platform>/
    /// <locale>/firefox-<V>.complete.mar`, partials beside it), e.g. a Try
    /// build's artifacts downloaded.
    Dir(PathBuf),
}

impl Artifacts {
    pub fn mar(&self, r: &Release, platform: &str, locale: &str, from: Option<&str>) -> Result<Vec<u8>, TaskError> {
        let spec = MarSpec {
            product: r.product.clone(),
            version: r.version.clone(),
            from: from.map(str::to_string),
            platform: platform.to_string(),
            locale: locale.to_string(),
        };
        match self {
            Self::Synthetic => Ok(crate::seed::mar::build(&spec)),
            Self::Dir(d) => {
                let p = d.join("update").join(platform).join(locale).join(spec.file_name());
                std::fs::read(&p).map_err(|e| TaskError::Fatal(format!("artifact {}: {e}", p.display())))
            }
        }
    }
}

/// Runs the tasks of one release against one stack.
pub struct StackRunner {
    pub endpoints: StackEndpoints,
    pub names: Names,
    pub artifacts: Artifacts,
    /// Per-graph scratch space (update-verify configs, checksums).
    pub work_dir: PathBuf,
    /// Balrog signoffs to give to the scheduled change: (user, role).
    pub signoffs: Vec<(String, String)>,
    pub http: reqwest::Client,
    pub(crate) s3: super::s3::Bucket,
    pub(crate) balrog: BalrogClient,
    pub(crate) bouncer: BouncerClient,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("the stack has no {0} service")]
    Missing(ServiceKind),
    #[error("{0}")]
    S3(String),
}

fn endpoint(e: &StackEndpoints, k: ServiceKind) -> Result<&Endpoint, RunnerError> {
    e.services.get(&k).ok_or(RunnerError::Missing(k))
}

impl StackRunner {
    pub fn new(
        endpoints: StackEndpoints,
        names: Names,
        artifacts: Artifacts,
        work_dir: PathBuf,
        signoffs: Vec<(String, String)>,
    ) -> Result<Self, RunnerError> {
        let b = endpoint(&endpoints, ServiceKind::Balrog)?;
        let bo = endpoint(&endpoints, ServiceKind::Bouncer)?;
        let s3 = endpoint(&endpoints, ServiceKind::S3)?;
        // The executor is the one retry layer (so attempts show in the report).
        let balrog = BalrogClient::new(&b.url, &b.credentials.secret).with_retry(RetryPolicy::none());
        let bouncer = BouncerClient::new(&bo.url, &bo.credentials.username, &bo.credentials.secret)
            .with_retry(RetryPolicy::none());
        let s3 = super::s3::Bucket::new(s3, RELEASES_BUCKET).map_err(RunnerError::S3)?;
        Ok(Self {
            endpoints,
            names,
            artifacts,
            work_dir,
            signoffs,
            http: crate::clients::http::http_client(),
            s3,
            balrog,
            bouncer,
        })
    }

    pub fn release(&self) -> &Release {
        &self.names.release
    }

    fn url(&self, k: ServiceKind) -> Result<String, TaskError> {
        endpoint(&self.endpoints, k)
            .map(|e| e.url.trim_end_matches('/').to_string())
            .map_err(|e| TaskError::Fatal(e.to_string()))
    }

    /// Public URL of a key in the stack's S3.
    pub fn s3_url(&self, key: &str) -> Result<String, TaskError> {
        let path: Vec<String> = key.split('/').map(crate::clients::balrog::enc).collect();
        Ok(format!(
            "{}/{RELEASES_BUCKET}/{}",
            self.url(ServiceKind::S3)?,
            path.join("/")
        ))
    }

    fn work_file(&self, name: &str) -> PathBuf {
        self.work_dir.join(name)
    }

    fn write_work(&self, name: &str, text: &str) -> Result<PathBuf, TaskError> {
        let p = self.work_file(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| TaskError::Fatal(format!("{}: {e}", d.display())))?;
        }
        std::fs::write(&p, text).map_err(|e| TaskError::Fatal(format!("{}: {e}", p.display())))?;
        Ok(p)
    }
}

fn platform_of(t: &TaskDef) -> Result<&str, TaskError> {
    t.platform
        .as_deref()
        .ok_or_else(|| TaskError::Fatal(format!("{}: task has no platform", t.label)))
}

fn locale_of(t: &TaskDef) -> Result<&str, TaskError> {
    t.locale
        .as_deref()
        .ok_or_else(|| TaskError::Fatal(format!("{}: task has no locale", t.label)))
}

fn s3e(e: String) -> TaskError {
    // Connection problems and 5xx from S3 may pass.
    TaskError::Retryable(e)
}

pub(crate) fn exists(p: &Path) -> bool {
    p.is_file()
}

#[async_trait]
impl TaskRunner for StackRunner {
    async fn run(&self, t: &TaskDef, log: &TaskLog) -> Result<String, TaskError> {
        match t.kind.as_str() {
            "release-bouncer-sub" => bouncer::submit(self, log).await,
            "release-bouncer-check" => bouncer::check(self, log).await,
            "release-bouncer-aliases" => bouncer::aliases(self, log).await,
            "beetmover-repackage" => beetmover::repackage(self, platform_of(t)?, locale_of(t)?, log).await,
            "beetmover-checksums" => beetmover::checksums(self, platform_of(t)?, locale_of(t)?, log).await,
            "release-generate-checksums" => beetmover::generate_checksums(self, log).await,
            "release-generate-checksums-beetmover" => beetmover::upload_checksums(self, log).await,
            "release-beetmover-push-to-release" => beetmover::push_to_releases(self, log).await,
            "release-balrog-submit-toplevel" => balrog::toplevel(self, log).await,
            "balrog" => balrog::submit_locale(self, platform_of(t)?, locale_of(t)?, log).await,
            "release-balrog-scheduling" => balrog::schedule(self, log).await,
            "release-update-verify-config" => verify::config(self, platform_of(t)?, log).await,
            "release-update-verify" => verify::update_verify(self, platform_of(t)?, log).await,
            "release-final-verify" => verify::final_verify(self, log).await,
            "release-mark-as-shipped" => ship::mark_as_shipped(self, log).await,
            "post-balrog-dummy" | "post-beetmover-dummy" | "post-update-verify-dummy" => {
                Ok("barrier: its dependencies are done".into())
            }
            "release-generate-checksums-signing" => {
                log.line("a staging stack holds no GPG key: SHA*SUMS stay unsigned");
                Ok("simulated: no GPG signing in staging".into())
            }
            "release-early-tagging" | "release-version-bump" => ship::simulated_repo(self, &t.kind, log),
            k if k.starts_with("release-notify") => ship::simulated_notify(self, k, log),
            other => Err(TaskError::Fatal(format!("no implementation for kind `{other}`"))),
        }
    }
}
