// Verifies COSE_Sign1 messages written by ztm with implementations that
// share none of its code: the cose-js package for ES256, ES384 and PS256,
// and node's own crypto (OpenSSL) over a Sig_structure built with the cbor
// package for EdDSA.
//
// Usage: node cosejs_verify.js cases.json
// cases.json: [{"name", "alg", "msg": hex, "key": {x, y} | {n, e} | {pem}}]
// Prints one JSON line per case: {"name", "ok", "payload": hex, "error"}.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const cose = require('cose-js');
const cbor = require('cbor');

function verifyEdDSA (msg, pem) {
  let obj = cbor.decodeFirstSync(msg);
  if (obj instanceof cbor.Tagged) {
    if (obj.tag !== 18) throw new Error('not a COSE_Sign1 tag: ' + obj.tag);
    obj = obj.value;
  }
  const [prot, , payload, sig] = obj;
  const tbs = cbor.encode(['Signature1', prot, Buffer.alloc(0), payload]);
  if (!crypto.verify(null, tbs, pem, sig)) throw new Error('Signature mismatch');
  return payload;
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const c of cases) {
  const msg = Buffer.from(c.msg, 'hex');
  const out = { name: c.name, ok: false };
  try {
    let payload;
    if (c.alg === 'EdDSA') {
      payload = verifyEdDSA(msg, c.key.pem);
    } else {
      const key = {};
      for (const k of Object.keys(c.key)) key[k] = Buffer.from(c.key[k], 'hex');
      payload = cose.sign.verifySync(msg, { key });
    }
    out.ok = true;
    out.payload = Buffer.from(payload).toString('hex');
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
  }
  console.log(JSON.stringify(out));
}
