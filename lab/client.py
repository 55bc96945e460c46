"""Talk to an OpenAI-compatible server the way users do: plain HTTP for the lab's own requests, or the real
`openai` package for client-side failure captures (its exceptions are what users paste).

Usage: python3 lab/client.py --port 23333 [--model NAME|auto] [--prompt-chars N] [--max-tokens M] [--openai]
Exit status 0 when the completion succeeded, 1 when the server refused it (the error is printed).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

FILLER = "the quick brown fox jumps over the lazy dog "


def prompt_of(chars: int) -> str:
    """A prompt of exactly `chars` ASCII characters (the lab tokenizer makes that many tokens)."""
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


def _request(url: str, body: Optional[dict], timeout: float) -> Tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def list_models(port: int, timeout: float = 1.0) -> Optional[List[str]]:
    """Model ids served on the port, or None while the server is not answering."""
    try:
        status, text = _request(f"http://127.0.0.1:{port}/v1/models", None, timeout)
        if status != 200:
            return None
        return [m["id"] for m in json.loads(text).get("data", [])]
    except (OSError, ValueError, KeyError):
        return None


def chat(port: int, model: str, prompt: str, max_tokens: int = 32, timeout: float = 60.0) -> dict:
    """One chat completion over plain HTTP: {status, seconds, prompt_tokens, completion_tokens, text|error}."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0.7}
    t0 = time.time()
    try:
        status, text = _request(f"http://127.0.0.1:{port}/v1/chat/completions", body, timeout)
    except OSError as e:
        return {"status": None, "seconds": round(time.time() - t0, 3), "error": str(e)}
    out = {"status": status, "seconds": round(time.time() - t0, 3)}
    try:
        doc = json.loads(text)
    except ValueError:
        return dict(out, error=text[:300])
    if status == 200:
        usage = doc.get("usage") or {}
        out.update(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
                   text=(doc["choices"][0]["message"].get("content") or "")[:80])
    else:
        out["error"] = (doc.get("message") or doc.get("error") or text)
        if not isinstance(out["error"], str):
            out["error"] = json.dumps(out["error"])[:300]
    return out


def standard_requests(port: int, session_len: Optional[int], timeout: float = 60.0) -> List[dict]:
    """The lab's requests after ready: a short chat, a long prompt, then 4 concurrent short chats.

    The long prompt (up to 2000 tokens, under half of session_len) makes the prefill allocate activations,
    so the peak includes a real request, not only start-up.
    """
    models = list_models(port, timeout=5.0) or ["?"]
    model = models[0]
    results = [chat(port, model, "hello, who are you?", 32, timeout)]
    long_chars = 2000 if session_len is None else max(16, min(2000, session_len // 2))
    results.append(chat(port, model, prompt_of(long_chars), 32, timeout))
    with ThreadPoolExecutor(4) as pool:
        results += list(pool.map(lambda i: chat(port, model, f"count to {i + 3}", 32, timeout), range(4)))
    return results


def _openai_chat(port: int, model: str, prompt: str, max_tokens: int) -> str:
    from openai import OpenAI
    client = OpenAI(api_key="none", base_url=f"http://127.0.0.1:{port}/v1")
    if model == "auto":
        model = client.models.list().data[0].id
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                          max_tokens=max_tokens)
    return resp.choices[0].message.content or ""


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="chat completion against an OpenAI-compatible server")
    ap.add_argument("--port", type=int, default=23333)
    ap.add_argument("--model", default="auto", help="model name to ask for; auto: the first one served")
    ap.add_argument("--prompt-chars", type=int, default=0, help="send a prompt of N characters instead")
    ap.add_argument("--prompt", default="hello, who are you?")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--openai", action="store_true", help="use the openai package (real client errors)")
    args = ap.parse_args(argv)
    prompt = prompt_of(args.prompt_chars) if args.prompt_chars else args.prompt
    if args.openai:
        print(_openai_chat(args.port, args.model, prompt, args.max_tokens))  # raises on 4xx, like user code
        return 0
    model = args.model
    if model == "auto":
        model = (list_models(args.port, timeout=5.0) or ["?"])[0]
    result = chat(args.port, model, prompt, args.max_tokens)
    print(json.dumps(result))
    return 0 if result.get("status") == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
