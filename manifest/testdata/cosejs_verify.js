// Verifies COSE_Sign1 messages written by ztm with implementations that
// share none of its code: the cose-js package for ES256, ES384 and PS256,
// and node's own crypto (OpenSSL) over a Sig_structure built with the cbor
// package for EdDSA and for COSE Receipts (whose RFC 9162 root this script
// recomputes itself).
//
// Usage: node cosejs_verify.js cases.json
// cases.json: [{"name", "alg", "msg": hex, "key": {x, y} | {n, e} | {pem},
//               "leaf": hex (receipts only)}]
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

// verifyReceipt checks a COSE Receipt (RFC 9942, RFC9162_SHA256) for a
// leaf: it recomputes the root from the inclusion proof with the algorithm
// of RFC 9162 §2.1.3.2 and verifies the signature over that root as the
// detached payload. Returns the root.
function verifyReceipt (msg, leaf, pem) {
  let obj = cbor.decodeFirstSync(msg);
  if (!(obj instanceof cbor.Tagged) || obj.tag !== 18) throw new Error('not a tagged COSE_Sign1');
  const [prot, unprot, payload, sig] = obj.value;
  if (payload !== null) throw new Error('payload is not detached');
  const hdr = cbor.decodeFirstSync(prot);
  if (hdr.get(395) !== 1) throw new Error('vds is not RFC9162_SHA256');
  const proofs = unprot.get(396).get(-1);
  if (proofs.length !== 1) throw new Error('want one inclusion proof');
  const [size, index, path] = cbor.decodeFirstSync(proofs[0]);
  const sha = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
  if (index >= size) throw new Error('index beyond tree');
  let fn = index; let sn = size - 1;
  let r = sha(Buffer.from([0]), leaf);
  for (const p of path) {
    if (sn === 0) throw new Error('proof too long');
    if ((fn & 1) === 1 || fn === sn) {
      r = sha(Buffer.from([1]), p, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = sha(Buffer.from([1]), r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('proof too short');
  const tbs = cbor.encode(['Signature1', prot, Buffer.alloc(0), r]);
  if (!crypto.verify('sha256', tbs, { key: pem, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('Signature mismatch');
  return r;
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
for (const c of cases) {
  const msg = Buffer.from(c.msg, 'hex');
  const out = { name: c.name, ok: false };
  try {
    let payload;
    if (c.alg === 'receipt') {
      payload = verifyReceipt(msg, Buffer.from(c.leaf, 'hex'), c.key.pem);
    } else if (c.alg === 'EdDSA') {
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
