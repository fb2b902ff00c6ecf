"""Talks to a running `hypura serve` as its users' programs do: the PyPI `ollama` and `openai`
client packages, raw HTTP for the error cases, 8 concurrent clients and a client that goes away
mid-stream. Prints one JSON object of what it saw; tests/serve_cli.rs checks it.

    python3 tests/serve_clients.py URL MODEL QUESTION PROMPT N
"""

import concurrent.futures
import json
import re
import socket
import sys
import time
import urllib.error
import urllib.request

import ollama
import openai

url, model, question, prompt, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
out = {}

# Greedy: temperature 0 and no repetition penalty (Ollama's default is 1.1).
opts = {"temperature": 0, "repeat_penalty": 1, "num_predict": n}
turn = [{"role": "user", "content": question}]
c = ollama.Client(host=url)
r = c.chat(model=model, messages=turn, options=opts)
out["ollama_chat"] = r.message.content
out["ollama_chat_done_reason"] = r.done_reason
out["ollama_chat_eval_count"] = r.eval_count
out["ollama_chat_timed"] = all(x and x > 0 for x in (r.total_duration, r.prompt_eval_duration, r.eval_duration))
out["ollama_chat_stream"] = "".join(p.message.content for p in c.chat(model=model, messages=turn, options=opts, stream=True))
r = c.generate(model=model, prompt=prompt, raw=True, options=opts)
out["ollama_generate_raw"] = r.response
out["ollama_generate_stream"] = "".join(p.response for p in c.generate(model=model, prompt=prompt, raw=True, options=opts, stream=True))
stopped = c.generate(model=model, prompt=prompt, raw=True, options={**opts, "stop": [out["ollama_generate_raw"][3:6]]})
out["ollama_generate_stop"] = [stopped.response, stopped.done_reason]
out["ollama_list"] = [m.model for m in c.list().models]
shown = c.show(model)
out["ollama_show_capabilities"] = list(shown.capabilities or [])
out["ollama_ps"] = [m.model for m in c.ps().models]
try:
    c.chat(model="no-such-model", messages=turn)
    out["ollama_unknown_model"] = None
except ollama.ResponseError as e:
    out["ollama_unknown_model"] = [e.status_code, e.error]

o = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
r = o.chat.completions.create(model=model, messages=turn, temperature=0, max_tokens=n)
out["openai_chat"] = r.choices[0].message.content
out["openai_chat_finish"] = r.choices[0].finish_reason
out["openai_chat_usage"] = [r.usage.prompt_tokens, r.usage.completion_tokens]
text, usage = "", None
for chunk in o.chat.completions.create(model=model, messages=turn, temperature=0, max_tokens=n, stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage.completion_tokens
out["openai_chat_stream"] = [text, usage]
r = o.completions.create(model=model, prompt=prompt, temperature=0, max_tokens=n)
out["openai_completion"] = r.choices[0].text
out["openai_completion_stream"] = "".join(ch.choices[0].text for ch in o.completions.create(model=model, prompt=prompt, temperature=0, max_tokens=n, stream=True) if ch.choices)
out["openai_models"] = [m.id for m in o.models.list().data]
try:
    o.chat.completions.create(model="no-such-model", messages=turn)
    out["openai_unknown_model"] = None
except openai.NotFoundError as e:
    out["openai_unknown_model"] = [e.status_code, e.body.get("message") if isinstance(e.body, dict) else str(e.body)]

# Eight clients at once: each is answered, the same greedy reply as alone.
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    replies = list(pool.map(lambda _: ollama.Client(host=url).chat(model=model, messages=turn, options=opts).message.content, range(8)))
out["concurrent"] = replies


def raw(method, path, body, content_type="application/json"):
    req = urllib.request.Request(url + path, data=body, method=method, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return [resp.status, json.loads(resp.read() or b"null")]
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return [e.code, json.loads(text)]
        except ValueError:
            return [e.code, text.decode(errors="replace")]


out["bad_json"] = raw("POST", "/api/chat", b"{not json")
out["bad_field"] = raw("POST", "/api/generate", json.dumps({"model": model, "prompt": 5}).encode())
out["openai_bad_json"] = raw("POST", "/v1/chat/completions", b"[")
big = json.dumps({"model": model, "prompt": "x" * 200_000}).encode()
out["too_large"] = raw("POST", "/api/generate", big)
out["openai_too_large"] = raw("POST", "/v1/completions", big)
out["too_big_ctx"] = raw("POST", "/api/generate", json.dumps({"model": model, "prompt": "hi", "stream": False, "options": {"num_ctx": 1 << 22}}).encode())
out["health"] = raw("GET", "/health", None)


def metric(name):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        text = resp.read().decode()
    m = re.search(rf"^hypura_{name} (\S+)$", text, re.M)
    return float(m.group(1))


# A client that reads one line of a long stream and goes away: its generation is cancelled.
host, port = url.removeprefix("http://").split(":")
s = socket.create_connection((host, int(port)))
body = json.dumps({"model": model, "prompt": prompt, "raw": True, "options": {"num_predict": 100000, "temperature": 0}}).encode()
s.sendall(b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
got = b""
while b"\"done\":false" not in got:
    got += s.recv(4096)
s.close()
deadline = time.time() + 60
while metric("requests_cancelled_total") < 1 and time.time() < deadline:
    time.sleep(0.2)
out["cancelled"] = metric("requests_cancelled_total")
out["after_cancel"] = c.generate(model=model, prompt=prompt, raw=True, options=opts).response
out["metrics_tokens"] = metric("tokens_predicted_total")

# keep_alive 0 unloads the model (`ollama stop`); the next request loads it again.
out["unload"] = c.generate(model=model, prompt="", keep_alive=0).done_reason
out["ps_unloaded"] = [m.model for m in c.ps().models]
r = c.chat(model=model, messages=turn, options=opts, keep_alive="5m")
out["reloaded"] = [r.message.content, (r.load_duration or 0) > 0]
out["ps_reloaded"] = [m.model for m in c.ps().models]
print(json.dumps(out))
