"""A local stand-in for the Hugging Face Hub, for tests (CI cannot reach the real one).

Serves ROOT/ORG/NAME/PATH as file PATH of repository ORG/NAME, at one commit, the way the hub
does for files kept in LFS:
  HEAD|GET /ORG/NAME/resolve/REV/PATH  302 to the storage host, with X-Repo-Commit,
                                       X-Linked-Etag (the file's sha256) and X-Linked-Size
  GET /cdn/ORG/NAME/PATH               the bytes, honouring Range (the storage host: named
                                       "localhost" so that clients see another host)
  GET /api/models/ORG/NAME/tree/REV[/FOLDER]?recursive=true   the JSON listing
Repositories under ROOT/private/ answer 401. Each request is appended to --log as
"METHOD PATH RANGE". --drop-after N: the first download without a Range header sends N bytes
and closes the connection. --corrupt: downloads have their first byte changed.

Prints "port N" once listening.
"""

import argparse
import hashlib
import http.server
import json
import os
import sys
import threading
import urllib.parse

COMMIT = "c0ffee0123456789abcdef0123456789abcdef01"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--drop-after", type=int, default=None)
    ap.add_argument("--corrupt", action="store_true")
    args = ap.parse_args()
    state = {"dropped": False, "lock": threading.Lock(), "sha": {}}

    def sha256(path):
        with state["lock"]:
            if path not in state["sha"]:
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                state["sha"][path] = h.hexdigest()
            return state["sha"][path]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def note(self):
            with state["lock"], open(args.log, "a") as f:
                f.write(f"{self.command} {self.path} {self.headers.get('Range', '-')}\n")

        def reply(self, status, headers=(), body=b""):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.close_connection = True

        def not_found(self, code):
            self.reply(404, [("X-Error-Code", code)], b'{"error":"not found"}')

        def repo_file(self, org, name, path):
            repo_dir = os.path.join(args.root, org, name)
            if not os.path.isdir(repo_dir):
                return None, "RepoNotFound"
            f = os.path.join(repo_dir, path)
            return (f, None) if os.path.isfile(f) else (None, "EntryNotFound")

        def do_HEAD(self):
            self.route()

        def do_GET(self):
            self.route()

        def route(self):
            self.note()
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
            if "private" in parts[:3]:
                return self.reply(401, [("X-Error-Code", "GatedRepo")], b'{"error":"gated"}')
            if len(parts) >= 5 and parts[2] == "resolve":
                return self.resolve(parts[0], parts[1], parts[3], "/".join(parts[4:]))
            if len(parts) >= 4 and parts[0] == "cdn":
                return self.cdn(parts[1], parts[2], "/".join(parts[3:]))
            if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "tree":
                return self.tree(parts[2], parts[3], parts[5], "/".join(parts[6:]))
            self.not_found("EntryNotFound")

        def resolve(self, org, name, rev, path):
            if rev not in ("main", COMMIT):
                return self.not_found("RevisionNotFound")
            f, why = self.repo_file(org, name, path)
            if f is None:
                return self.not_found(why)
            host = self.headers["Host"].replace("127.0.0.1", "localhost")
            quoted = urllib.parse.quote(f"{org}/{name}/{path}")
            self.reply(302, [
                ("Location", f"http://{host}/cdn/{quoted}"),
                ("X-Repo-Commit", COMMIT),
                ("X-Linked-Etag", f'"{sha256(f)}"'),
                ("X-Linked-Size", str(os.path.getsize(f))),
                ("ETag", '"0123456789abcdef0123456789abcdef01234567"'),
            ])

        def cdn(self, org, name, path):
            f, why = self.repo_file(org, name, path)
            if f is None:
                return self.not_found(why)
            size = os.path.getsize(f)
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
                if start >= size:
                    return self.reply(416, [("Content-Range", f"bytes */{size}")])
            with open(f, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            if args.corrupt and data and start == 0:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            status = 206 if start else 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            drop = args.drop_after is not None and not rng and not state["dropped"]
            if drop:
                state["dropped"] = True
                self.wfile.write(data[: args.drop_after])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            self.wfile.write(data)

        def tree(self, org, name, rev, folder):
            if rev not in ("main", COMMIT):
                return self.not_found("RevisionNotFound")
            repo_dir = os.path.join(args.root, org, name)
            start = os.path.join(repo_dir, folder)
            if not os.path.isdir(start):
                return self.not_found("RepoNotFound" if not os.path.isdir(repo_dir) else "EntryNotFound")
            entries = []
            for d, dirs, files in os.walk(start):
                for sub in sorted(dirs):
                    rel = os.path.relpath(os.path.join(d, sub), repo_dir)
                    entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": rel})
                for fn in sorted(files):
                    full = os.path.join(d, fn)
                    rel = os.path.relpath(full, repo_dir)
                    size = os.path.getsize(full)
                    entries.append({
                        "type": "file", "oid": "1" * 40, "size": size, "path": rel,
                        "lfs": {"oid": sha256(full), "size": size, "pointerSize": 134},
                    })
            body = json.dumps(entries).encode()
            self.reply(200, [("Content-Type", "application/json")], body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
