//! What the hub says about a repository: a file's commit, sha256, size and download location
//! (`HEAD /resolve`), and the files under a folder (`/api/models/.../tree`).

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;

use crate::{check_repo_path, check_revision, is_sha256, HubError, RepoId};

/// The hub (or a mirror): its address, and the token sent to it.
pub struct Hub {
    endpoint: String,
    token: Option<String>,
    /// Follows no redirect: the hub's answer to `HEAD /resolve` carries the file's metadata on
    /// its redirect to the storage host.
    pub(crate) no_redirects: ureq::Agent,
    /// Follows redirects and never forwards the token across them.
    pub(crate) agent: ureq::Agent,
}

/// A file as `HEAD /resolve` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMeta {
    /// The commit the revision resolved to.
    pub commit: String,
    /// The blob's name in the cache: the file's sha256 for files kept in LFS (every large file),
    /// the git blob hash otherwise.
    pub etag: String,
    pub size: u64,
    /// Where the bytes are (often a signed URL on a storage host).
    pub location: String,
}

impl FileMeta {
    /// The sha256 the hub vouches for, when the etag is one.
    pub fn sha256(&self) -> Option<&str> {
        is_sha256(&self.etag).then_some(self.etag.as_str())
    }
}

/// One file of a folder listing.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    /// Repository path, `/`-separated.
    pub path: String,
    pub size: u64,
}

/// Longest a connection may take to open, and a transfer may go without receiving a byte.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Relative redirects followed for one `HEAD` (a renamed repository answers with one).
const MAX_HUB_REDIRECTS: usize = 5;
/// A folder listing larger than this is refused rather than read into memory.
const MAX_LISTING_BYTES: u64 = 64 << 20;
const MAX_LISTING_PAGES: usize = 1000;

impl Hub {
    /// `$HF_ENDPOINT` (default `https://huggingface.co`) with the token of `$HF_TOKEN`, else the
    /// one `hf auth login` saved (`$HF_TOKEN_PATH`, else `$HF_HOME/token`, else
    /// `~/.cache/huggingface/token`).
    pub fn from_env() -> Hub {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".to_string());
        let token_file = var("HF_TOKEN_PATH")
            .map(std::path::PathBuf::from)
            .or_else(|| var("HF_HOME").map(|h| std::path::Path::new(&h).join("token")))
            .or_else(|| {
                var("XDG_CACHE_HOME").map(|c| std::path::Path::new(&c).join("huggingface/token"))
            })
            .or_else(|| {
                var("HOME").map(|h| std::path::Path::new(&h).join(".cache/huggingface/token"))
            });
        let token = var("HF_TOKEN").or_else(|| {
            token_file
                .and_then(|f| std::fs::read_to_string(f).ok())
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        Hub::new(&endpoint, token)
    }

    pub fn new(endpoint: &str, token: Option<String>) -> Hub {
        let build = |redirects| {
            ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout_read(STALL_TIMEOUT)
                .redirects(redirects)
                .try_proxy_from_env(true)
                .user_agent(concat!("hypura/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Hub {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            no_redirects: build(0),
            agent: build(5),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `<endpoint>/<repo>/resolve/<revision>/<path>`: the address people download the file from.
    pub fn file_url(&self, repo: &RepoId, revision: &str, path: &str) -> String {
        format!(
            "{}/{repo}/resolve/{}/{}",
            self.endpoint,
            encode(revision, false),
            encode(path, true)
        )
    }

    /// A request, with the token when `url` is on the hub's own host.
    pub(crate) fn request(&self, agent: &ureq::Agent, method: &str, url: &str) -> ureq::Request {
        let req = agent.request(method, url);
        match &self.token {
            Some(t) if host(url) == host(&self.endpoint) => {
                req.set("Authorization", &format!("Bearer {t}"))
            }
            _ => req,
        }
    }

    /// What the hub says about one file: `HEAD /resolve`, following redirects that stay on the
    /// hub and stopping at the one to the storage host, whose headers carry the metadata.
    pub fn metadata(
        &self,
        repo: &RepoId,
        revision: &str,
        path: &str,
    ) -> Result<FileMeta, HubError> {
        check_revision(revision)?;
        check_repo_path(path)?;
        let mut url = self.file_url(repo, revision, path);
        for _ in 0..MAX_HUB_REDIRECTS {
            let resp = self
                .request(&self.no_redirects, "HEAD", &url)
                .set("Accept-Encoding", "identity")
                .call()
                .map_err(|e| self.failure(&url, e, HubNotFound::File))?;
            let location = resp.header("Location").map(|l| join(&url, l));
            let redirect = (300..400).contains(&resp.status());
            match location {
                Some(next) if redirect && host(&next) == host(&url) => {
                    url = next;
                    continue;
                }
                _ => {}
            }
            let header = |name: &'static str| {
                resp.header(name).ok_or_else(|| HubError::Protocol {
                    url: url.clone(),
                    what: format!("the answer has no {name} header; is this a Hugging Face hub?"),
                })
            };
            let commit = header("X-Repo-Commit")?.to_string();
            if !crate::is_commit(&commit) {
                return Err(HubError::Protocol {
                    url,
                    what: format!("X-Repo-Commit {commit:?} is not a commit hash"),
                });
            }
            let etag = resp
                .header("X-Linked-Etag")
                .or_else(|| resp.header("ETag"))
                .map(normalize_etag)
                .filter(|e| !e.is_empty())
                .ok_or_else(|| HubError::Protocol {
                    url: url.clone(),
                    what: "the answer has neither X-Linked-Etag nor ETag".into(),
                })?;
            if !etag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(HubError::Protocol {
                    url,
                    what: format!("etag {etag:?} cannot name a file"),
                });
            }
            let size_text = resp
                .header("X-Linked-Size")
                .or_else(|| (!redirect).then(|| resp.header("Content-Length")).flatten())
                .ok_or_else(|| HubError::Protocol {
                    url: url.clone(),
                    what: "the answer gives no size (X-Linked-Size or Content-Length)".into(),
                })?;
            let size = size_text.trim().parse().map_err(|_| HubError::Protocol {
                url: url.clone(),
                what: format!("size {size_text:?} is not a number of bytes"),
            })?;
            return Ok(FileMeta {
                commit: commit.to_ascii_lowercase(),
                etag,
                size,
                location: location.unwrap_or(url),
            });
        }
        Err(HubError::Protocol {
            url,
            what: format!("more than {MAX_HUB_REDIRECTS} redirects on the hub"),
        })
    }

    /// Every file under `folder` (`""` for the whole repository) at `revision`, recursively,
    /// sorted by path.
    pub fn list(
        &self,
        repo: &RepoId,
        revision: &str,
        folder: &str,
    ) -> Result<Vec<RemoteFile>, HubError> {
        check_revision(revision)?;
        if !folder.is_empty() {
            check_repo_path(folder)?;
        }
        let mut url = format!(
            "{}/api/models/{repo}/tree/{}{}{}?recursive=true",
            self.endpoint,
            encode(revision, false),
            if folder.is_empty() { "" } else { "/" },
            encode(folder, true)
        );
        let mut files = Vec::new();
        for _ in 0..MAX_LISTING_PAGES {
            let resp = self
                .request(&self.agent, "GET", &url)
                .call()
                .map_err(|e| self.failure(&url, e, HubNotFound::Folder))?;
            let next = resp
                .header("Link")
                .and_then(next_link)
                .map(|n| join(&url, &n));
            let mut body = Vec::new();
            resp.into_reader()
                .take(MAX_LISTING_BYTES + 1)
                .read_to_end(&mut body)
                .map_err(|e| HubError::Transport {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            if body.len() as u64 > MAX_LISTING_BYTES {
                return Err(HubError::Protocol {
                    url,
                    what: format!("the listing is larger than {} MiB", MAX_LISTING_BYTES >> 20),
                });
            }
            let entries: Vec<TreeEntry> =
                serde_json::from_slice(&body).map_err(|e| HubError::Protocol {
                    url: url.clone(),
                    what: format!("the listing is not the hub's JSON: {e}"),
                })?;
            for e in entries.into_iter().filter(|e| e.kind == "file") {
                check_repo_path(&e.path).map_err(|_| HubError::Protocol {
                    url: url.clone(),
                    what: format!(
                        "the listing names {:?}, which is no repository path",
                        e.path
                    ),
                })?;
                files.push(RemoteFile {
                    size: e.lfs.map_or(e.size, |l| l.size),
                    path: e.path,
                });
            }
            match next {
                Some(n) => url = n,
                None => {
                    files.sort_by(|a, b| a.path.cmp(&b.path));
                    return Ok(files);
                }
            }
        }
        Err(HubError::Protocol {
            url,
            what: format!("the listing runs past {MAX_LISTING_PAGES} pages"),
        })
    }

    /// A failed request as an error that says what it means here.
    pub(crate) fn failure(&self, url: &str, e: ureq::Error, what: HubNotFound) -> HubError {
        match e {
            ureq::Error::Status(status, resp) => {
                let code = resp.header("X-Error-Code").unwrap_or("").to_string();
                let hint = match (status, code.as_str()) {
                    (401 | 403, _) if self.token.is_some() => {
                        "; the token given (HF_TOKEN or the saved login) may not read this repository".into()
                    }
                    (401 | 403, _) => {
                        "; the repository is private or gated: accept its terms on the hub and set HF_TOKEN".into()
                    }
                    (404, "RepoNotFound") => "; no such repository".into(),
                    (404, "RevisionNotFound") => "; no such revision".into(),
                    (404, _) => match what {
                        HubNotFound::File => "; no such file at this revision".into(),
                        HubNotFound::Folder => "; no such folder at this revision".into(),
                        HubNotFound::Data => String::new(),
                    },
                    (429, _) => "; the hub is limiting requests: try again later".into(),
                    (500..=599, _) => "; the server failed: try again later".into(),
                    _ => String::new(),
                };
                HubError::Status {
                    url: url.to_string(),
                    status,
                    hint,
                }
            }
            ureq::Error::Transport(t) => HubError::Transport {
                url: url.to_string(),
                reason: t.to_string(),
            },
        }
    }
}

/// What a 404 means for a request.
#[derive(Clone, Copy)]
pub(crate) enum HubNotFound {
    File,
    Folder,
    Data,
}

#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    size: u64,
}

/// `W/"abc"` and `"abc"` are both `abc`.
fn normalize_etag(e: &str) -> String {
    e.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://host[:port]` of a URL.
pub(crate) fn host(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

/// `location` (absolute, host-relative or path-relative) against the URL it came from.
fn join(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with('/') {
        format!("{}{location}", host(base))
    } else {
        let dir = base.split('?').next().unwrap_or(base);
        let dir = &dir[..dir.rfind('/').map_or(dir.len(), |i| i + 1)];
        format!("{dir}{location}")
    }
}

/// The `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"))
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_and_joined_as_the_hub_expects() {
        let hub = Hub::new("https://huggingface.co/", None);
        let repo = RepoId::parse("org/name").unwrap();
        assert_eq!(
            hub.file_url(&repo, "refs/pr/1", "Q5_K_M/a b+c.gguf"),
            "https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/Q5_K_M/a%20b%2Bc.gguf"
        );
        assert_eq!(host("http://127.0.0.1:8080/x/y"), "http://127.0.0.1:8080");
        assert_eq!(host("https://h"), "https://h");
        assert_eq!(join("https://h/a/b?q=1", "/c"), "https://h/c");
        assert_eq!(join("https://h/a/b", "c"), "https://h/a/c");
        assert_eq!(join("https://h/a/b", "http://o/p"), "http://o/p");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(
            next_link("<https://h/api?cursor=x>; rel=\"next\""),
            Some("https://h/api?cursor=x".into())
        );
        assert_eq!(next_link("<https://h/p>; rel=\"prev\""), None);
    }
}
