//! Downloading one file into the cache: into `blobs/<etag>.incomplete` (resumed with a range
//! request when one is there), checked against the hub's sha256, renamed to `blobs/<etag>` and
//! linked from the snapshot. A second download of the same file waits for none: it is refused
//! while the first holds the lock on the partial file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::remote::HubNotFound;
use crate::{Cache, FileMeta, Hub, HubError, RepoId};

/// How a downloaded file was checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Checksum {
    /// Its sha256 equals the one the hub gave.
    Sha256(String),
    /// The hub gave no sha256 (a small file kept in git, not LFS): only its size was checked.
    SizeOnly,
}

/// A file that is now in the cache.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its path under the snapshot folder.
    pub path: PathBuf,
    pub meta: FileMeta,
    /// Bytes transferred by this call (0 when the file was already there).
    pub downloaded: u64,
    /// Bytes of an earlier, interrupted download this one continued from.
    pub resumed_from: u64,
    /// `None` when the file was already in the cache (its size was checked).
    pub checksum: Option<Checksum>,
}

/// What [`Hub::download`] is doing, for a progress display: `(step, bytes done, bytes total)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading back the bytes of an interrupted download to continue its checksum.
    Rehashing,
    Downloading,
}

const CHUNK: usize = 1 << 20;

impl Hub {
    /// Makes `path` of `repo` at `revision` a file of the cache, downloading what is missing.
    /// `progress` is called as bytes are read back or arrive.
    pub fn download(
        &self,
        cache: &Cache,
        repo: &RepoId,
        revision: &str,
        path: &str,
        progress: &mut dyn FnMut(Step, u64, u64),
    ) -> Result<Fetched, HubError> {
        let meta = self.metadata(repo, revision, path)?;
        let blob = cache.blob(repo, &meta.etag);
        let present = fs::metadata(&blob).is_ok_and(|m| m.is_file() && m.len() == meta.size);
        let (downloaded, resumed_from, checksum) = if present {
            (0, 0, None)
        } else {
            let (got, from, sum) = self.fetch_blob(&meta, &blob, path, progress)?;
            (got, from, Some(sum))
        };
        let link = cache.link(repo, &meta.commit, path, &meta.etag)?;
        cache.set_ref(repo, revision, &meta.commit)?;
        Ok(Fetched {
            path: link,
            meta,
            downloaded,
            resumed_from,
            checksum,
        })
    }

    /// Downloads the blob; returns (bytes transferred, bytes resumed from, checksum).
    fn fetch_blob(
        &self,
        meta: &FileMeta,
        blob: &Path,
        name: &str,
        progress: &mut dyn FnMut(Step, u64, u64),
    ) -> Result<(u64, u64, Checksum), HubError> {
        let dir = blob.parent().expect("a blob has a folder");
        fs::create_dir_all(dir).map_err(HubError::io(dir))?;
        let partial = PathBuf::from(format!("{}.incomplete", blob.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&partial)
            .map_err(HubError::io(&partial))?;
        lock(&file, &partial, name)?;

        let mut have = file.metadata().map_err(HubError::io(&partial))?.len();
        if have > meta.size {
            file.set_len(0).map_err(HubError::io(&partial))?;
            have = 0;
        }
        let mut hasher = Sha256::new();
        if have > 0 {
            rehash(&mut file, &partial, have, &mut hasher, progress)?;
        }
        let resumed_from = have;
        let mut got = 0;
        if have < meta.size {
            let resp = self.open_body(meta, have)?;
            if resp.status() == 200 && have > 0 {
                // The server ignored the range: start over.
                file.set_len(0).map_err(HubError::io(&partial))?;
                hasher = Sha256::new();
                have = 0;
            }
            got = copy_body(
                resp,
                &mut file,
                &partial,
                meta,
                have,
                name,
                &mut hasher,
                progress,
            )?;
            have += got;
        }
        file.sync_all().map_err(HubError::io(&partial))?;
        if have != meta.size {
            let _ = fs::remove_file(&partial);
            return Err(HubError::SizeMismatch {
                file: name.to_string(),
                got: have,
                size: meta.size,
            });
        }
        let checksum = match meta.sha256() {
            Some(want) => {
                let hex = format!("{:x}", hasher.finalize());
                if !hex.eq_ignore_ascii_case(want) {
                    let _ = fs::remove_file(&partial);
                    return Err(HubError::Checksum {
                        file: name.to_string(),
                        expected: want.to_string(),
                        got: hex,
                    });
                }
                Checksum::Sha256(hex)
            }
            None => Checksum::SizeOnly,
        };
        fs::rename(&partial, blob).map_err(HubError::io(blob))?;
        Ok((got, resumed_from, checksum))
    }

    /// The response carrying bytes `from..` of the file.
    fn open_body(&self, meta: &FileMeta, from: u64) -> Result<ureq::Response, HubError> {
        let url = &meta.location;
        let mut req = self.request(&self.agent, "GET", url);
        req = req.set("Accept-Encoding", "identity");
        if from > 0 {
            req = req.set("Range", &format!("bytes={from}-"));
        }
        let resp = req
            .call()
            .map_err(|e| self.failure(url, e, HubNotFound::Data))?;
        match resp.status() {
            200 => Ok(resp),
            206 => {
                let range = resp.header("Content-Range").unwrap_or("");
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start == Some(from) {
                    Ok(resp)
                } else {
                    Err(HubError::Protocol {
                        url: url.clone(),
                        what: format!("asked for bytes {from}- and got Content-Range {range:?}"),
                    })
                }
            }
            s => Err(HubError::Status {
                url: url.clone(),
                status: s,
                hint: "; expected the file's bytes".into(),
            }),
        }
    }
}

/// Takes the lock on the partial file, or says another download holds it.
fn lock(file: &File, partial: &Path, name: &str) -> Result<(), HubError> {
    // SAFETY: flock on a descriptor this function borrows; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        Err(HubError::Busy {
            file: name.to_string(),
            partial: partial.to_path_buf(),
        })
    } else {
        Err(HubError::Io {
            path: partial.to_path_buf(),
            source: e,
        })
    }
}

/// Feeds the first `len` bytes of the partial file to `hasher`.
fn rehash(
    file: &mut File,
    partial: &Path,
    len: u64,
    hasher: &mut Sha256,
    progress: &mut dyn FnMut(Step, u64, u64),
) -> Result<(), HubError> {
    file.rewind().map_err(HubError::io(partial))?;
    let mut buf = vec![0; CHUNK];
    let mut done = 0;
    let mut reader = file.take(len);
    loop {
        let n = reader.read(&mut buf).map_err(HubError::io(partial))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(Step::Rehashing, done, len);
    }
    if done != len {
        return Err(HubError::Io {
            path: partial.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("shrank to {done} bytes while being read back"),
            ),
        });
    }
    Ok(())
}

/// Appends the body (the file from byte `have`) to the partial file; returns bytes written.
/// A transfer that stops early keeps what arrived and says how to resume.
#[allow(clippy::too_many_arguments)]
fn copy_body(
    resp: ureq::Response,
    file: &mut File,
    partial: &Path,
    meta: &FileMeta,
    have: u64,
    name: &str,
    hasher: &mut Sha256,
    progress: &mut dyn FnMut(Step, u64, u64),
) -> Result<u64, HubError> {
    let want = meta.size - have;
    // One byte more than expected is read, so that an overlong body is noticed.
    let mut body = resp.into_reader().take(want + 1);
    let mut buf = vec![0; CHUNK];
    let mut got = 0u64;
    progress(Step::Downloading, have, meta.size);
    loop {
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                file.flush().map_err(HubError::io(partial))?;
                return Err(HubError::Interrupted {
                    file: name.to_string(),
                    got: have + got,
                    size: meta.size,
                    reason: e.to_string(),
                });
            }
        };
        if n == 0 {
            break;
        }
        if got + n as u64 > want {
            let _ = fs::remove_file(partial);
            return Err(HubError::SizeMismatch {
                file: name.to_string(),
                got: have + got + n as u64,
                size: meta.size,
            });
        }
        file.write_all(&buf[..n]).map_err(HubError::io(partial))?;
        hasher.update(&buf[..n]);
        got += n as u64;
        progress(Step::Downloading, have + got, meta.size);
    }
    if got < want {
        file.flush().map_err(HubError::io(partial))?;
        return Err(HubError::Interrupted {
            file: name.to_string(),
            got: have + got,
            size: meta.size,
            reason: "the connection closed".into(),
        });
    }
    Ok(got)
}
