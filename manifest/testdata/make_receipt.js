// Makes a signed lot manifest and COSE Receipts (RFC 9942,
// RFC9162_SHA256) the standard way, with none of ztm's code: the Merkle
// tree hash and inclusion paths are computed here from RFC 9162 §2.1.1 and
// §2.1.3.1 by hand, the COSE_Sign1 structures are built with the cbor
// package, and ES256 signatures come from node's crypto (OpenSSL). The
// protected headers carry only alg and vds (plus CWT claims in the lot
// manifest, which names the lot): no ztm private header.
//
// Usage: node make_receipt.js leaves.json key.pem
// leaves.json: ["hex", ...] (the exact bytes of each leaf)
// Prints {"root", "lot", "lotNoCWT", "lotNoVDS", "receipts": [hex, ...]}.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const cbor = require('cbor');

const leaves = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).map(h => Buffer.from(h, 'hex'));
const key = crypto.createPrivateKey(fs.readFileSync(process.argv[3], 'utf8'));
const sha = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

// largestPow2Below returns the largest power of two smaller than n (n > 1).
function largestPow2Below (n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// mth is the Merkle Tree Hash of RFC 9162 §2.1.1.
function mth (d) {
  if (d.length === 0) return sha(Buffer.alloc(0));
  if (d.length === 1) return sha(Buffer.from([0]), d[0]);
  const k = largestPow2Below(d.length);
  return sha(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}

// path is PATH(m, D[n]) of RFC 9162 §2.1.3.1, leaf side first.
function path (m, d) {
  if (d.length <= 1) return [];
  const k = largestPow2Below(d.length);
  if (m < k) return path(m, d.slice(0, k)).concat([mth(d.slice(k))]);
  return path(m - k, d.slice(k)).concat([mth(d.slice(0, k))]);
}

function sign1 (protMap, unprot, payload, detached) {
  const prot = cbor.encode(protMap);
  const tbs = cbor.encode(['Signature1', prot, Buffer.alloc(0), payload]);
  const sig = crypto.sign('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' });
  return cbor.encode(new cbor.Tagged(18, [prot, unprot, detached ? null : payload, sig])).toString('hex');
}

const root = mth(leaves);
const cwt = new Map([[1, 'independent-script'], [2, 'LOT-NODE-1'], [6, 1772366400]]);
const out = {
  root: root.toString('hex'),
  lot: sign1(new Map([[1, -7], [15, cwt], [395, 1]]), new Map(), root, false),
  lotNoCWT: sign1(new Map([[1, -7], [395, 1]]), new Map(), root, false),
  lotNoVDS: sign1(new Map([[1, -7], [15, cwt]]), new Map(), root, false),
  receipts: leaves.map((_, i) => {
    const proof = cbor.encode([leaves.length, i, path(i, leaves)]);
    const unprot = new Map([[396, new Map([[-1, [proof]]])]]);
    return sign1(new Map([[1, -7], [395, 1]]), unprot, root, true);
  })
};
console.log(JSON.stringify(out));
