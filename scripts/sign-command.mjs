#!/usr/bin/env node
// Sign a gated command the way docs/signing.md specifies, with nothing but Node.js: a second,
// independent implementation of the signature (the booth's is gated/commands/signing.py).
//
//   node scripts/sign-command.mjs --key-file /etc/gated/command.key open_gate '{"zone":"hall"}'
//       prints the payload to publish on gated/v1/<site>/<booth>/cmd/open_gate, e.g. with
//       mosquitto_pub -t .../cmd/open_gate -m "$(node scripts/sign-command.mjs ...)"
//       options: --ts-ms N (default: now), --nonce S (default: 16 random bytes as hex)
//   node scripts/sign-command.mjs --check-vectors docs/signing-vectors.json
//       recomputes every vector (canonical string, signature, list checksum); exit 1 on any
//       difference
//
// Exit codes: 0 done, 1 a vector differs, 2 bad usage or input that cannot be signed.

import { createHash, createHmac, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

class Unsignable extends Error {}

// The canonical JSON: sorted keys, no whitespace, JSON.stringify's string escapes (the same
// as Python's json.dumps(ensure_ascii=False)), integers only.
export function canonical(value, path = "args") {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new Unsignable(`${path}: only integers up to 2^53 - 1 can be signed, not ${value}`);
    }
    return String(value);
  }
  if (typeof value === "string") {
    // with the u flag only an unpaired surrogate matches (String.isWellFormed is Node 20+)
    if (/[\uD800-\uDFFF]/u.test(value)) {
      throw new Unsignable(`${path}: string is not valid Unicode`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return "[" + value.map((v, i) => canonical(v, `${path}[${i}]`)).join(",") + "]";
  }
  if (typeof value === "object") {
    const keys = Object.keys(value);
    for (const k of keys) {
      if (!/^[\x00-\x7f]*$/.test(k)) throw new Unsignable(`${path}: keys must be ASCII`);
    }
    keys.sort(); // ASCII keys: UTF-16 order is byte order
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k], `${path}.${k}`))
      .join(",") + "}";
  }
  throw new Unsignable(`${path}: ${typeof value} is not JSON`);
}

// The key file: its bytes with ASCII whitespace stripped at both ends; pairs of hex digits
// spell the key, anything else is the key itself.
export function keyFromFile(bytes) {
  const ws = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
  let a = 0, b = bytes.length;
  while (a < b && ws.has(bytes[a])) a++;
  while (b > a && ws.has(bytes[b - 1])) b--;
  const raw = bytes.subarray(a, b);
  const text = raw.toString("latin1");
  return /^(?:[0-9A-Fa-f]{2})+$/.test(text) ? Buffer.from(text, "hex") : Buffer.from(raw);
}

export function checkNonce(nonce) {
  if (typeof nonce !== "string" || !/^[\x21-\x7e]{8,64}$/.test(nonce)) {
    throw new Unsignable("nonce must be 8-64 printable ASCII characters (no spaces)");
  }
}

export function checkTs(ts) {
  if (!Number.isSafeInteger(ts) || ts < 1e11) {
    throw new Unsignable(`ts must be integer milliseconds since 1970, not ${ts}`);
  }
}

export function signedString(name, args, ts, nonce) {
  checkTs(ts);
  checkNonce(nonce);
  return canonical({ args, name, nonce, ts }, "command");
}

export function hmacHex(key, text) {
  return createHmac("sha256", key).update(Buffer.from(text, "utf8")).digest("hex");
}

export function signCommand(key, name, args, ts, nonce) {
  const sig = hmacHex(key, signedString(name, args, ts, nonce));
  return JSON.stringify({ args, ts, nonce, sig });
}

function checkVectors(file) {
  const doc = JSON.parse(readFileSync(file, "utf8"));
  let passed = 0, failed = 0;
  const expect = (ok, what) => {
    if (ok) passed++;
    else { failed++; console.error(`FAIL ${what}`); }
  };
  for (const v of doc.commands) {
    const key = keyFromFile(Buffer.from(v.key_file, "utf8"));
    expect(key.toString("hex") === v.key_hex, `${v.title}: key`);
    if (v.form === "ms") {
      const text = signedString(v.name, v.args, v.ts, v.nonce);
      expect(text === v.canonical, `${v.title}: canonical ${text}`);
      expect(Buffer.from(text, "utf8").toString("hex") === v.canonical_hex,
             `${v.title}: canonical bytes`);
      expect(JSON.parse(signCommand(key, v.name, v.args, v.ts, v.nonce)).sig === v.sig,
             `${v.title}: payload`);
    }
    // the legacy form's canonical text is Python's float formatting: only its HMAC is ours
    expect(hmacHex(key, v.canonical) === v.sig, `${v.title}: signature`);
  }
  for (const r of doc.refused) {
    let refused = false;
    try {
      signedString("open_gate", r.args ?? { zone: "hall" }, r.ts ?? 1795000000123,
                   r.nonce ?? "0123456789abcdef");
    } catch (e) {
      if (!(e instanceof Unsignable)) throw e;
      refused = true;
    }
    expect(refused, `${r.title}: should be refused`);
  }
  for (const l of doc.list_checksums) {
    const body = l.op === "snapshot" ? l.entries : { deletes: l.deletes, upserts: l.upserts };
    const text = canonical(body, "list");
    expect(text === l.canonical, `${l.title}: canonical`);
    expect(createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex") === l.checksum,
           `${l.title}: checksum`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

function main(argv) {
  const opts = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) opts[argv[i].slice(2)] = argv[++i];
    else rest.push(argv[i]);
  }
  if (opts["check-vectors"]) return checkVectors(opts["check-vectors"]);
  if (!opts["key-file"] || rest.length < 1 || rest.length > 2) {
    console.error("usage: sign-command.mjs --key-file FILE [--ts-ms N] [--nonce S] NAME [ARGS]\n"
                  + "       sign-command.mjs --check-vectors docs/signing-vectors.json");
    return 2;
  }
  const key = keyFromFile(readFileSync(opts["key-file"]));
  const args = rest[1] === undefined ? {} : JSON.parse(rest[1]);
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    console.error("ARGS must be a JSON object");
    return 2;
  }
  const ts = opts["ts-ms"] === undefined ? Date.now() : Number(opts["ts-ms"]);
  const nonce = opts.nonce ?? randomBytes(16).toString("hex");
  process.stdout.write(signCommand(key, rest[0], args, ts, nonce) + "\n");
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof Unsignable || e instanceof SyntaxError)) throw e;
  console.error(`sign-command: ${e.message}`);
  process.exitCode = 2;
}
