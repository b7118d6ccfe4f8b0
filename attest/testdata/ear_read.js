// Reads an EAR CWT written by ztm with nothing but the keys of
// draft-ietf-rats-ear and the cbor package: it verifies the ES256
// signature with node's own crypto (OpenSSL) over a Sig_structure it
// builds itself, then names the verifier from ear.verifier-id (1004) as the
// draft does, developer = 0 and build = 1.
//
// Usage: node ear_read.js <token hex> <jwk json>
// Prints {"developer", "build", "iat", "exp", "status": {submod: n}}.
'use strict';
const crypto = require('crypto');
const cbor = require('cbor');

const token = Buffer.from(process.argv[2], 'hex');
const key = crypto.createPublicKey({ key: JSON.parse(process.argv[3]), format: 'jwk' });
let obj = cbor.decodeFirstSync(token);
if (obj instanceof cbor.Tagged && obj.tag === 61) obj = obj.value;
if (!(obj instanceof cbor.Tagged) || obj.tag !== 18) throw new Error('not a tagged COSE_Sign1');
const [prot, , payload, sig] = obj.value;
const hdr = cbor.decodeFirstSync(prot);
if (hdr.get(1) !== -7) throw new Error('alg is not ES256: ' + hdr.get(1));
const tbs = cbor.encode(['Signature1', prot, Buffer.alloc(0), payload]);
if (!crypto.verify('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('signature does not verify');
const ear = cbor.decodeFirstSync(payload);
const vid = ear.get(1004);
const status = {};
const submods = ear.get(266);
const entries = submods instanceof Map ? submods.entries() : Object.entries(submods);
for (const [name, appraisal] of entries) status[name] = appraisal.get(1000);
console.log(JSON.stringify({
  developer: vid.get(0),
  build: vid.get(1),
  iat: ear.get(6),
  exp: ear.get(4),
  status
}));
