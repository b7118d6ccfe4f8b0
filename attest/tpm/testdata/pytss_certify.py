# pytss_certify.py makes a TPM2_Certify certification on a TPM 2.0 (swtpm)
# through tpm2-pytss, the Python binding of the TCG's tpm2-tss ESAPI: an
# implementation ztm did not write. It creates an ECC primary, a restricted
# ECDSA attestation key and an unrestricted ECDSA key (fixedTPM, fixedParent,
# sensitiveDataOrigin), and has the attestation key certify the key over the
# qualifying data given in hex. It writes attest.bin (TPMS_ATTEST), sig.bin
# (TPMT_SIGNATURE), key.pub and ak.pub (TPMT_PUBLIC) into the output folder.
#
# usage: pytss_certify.py <swtpm TCTI conf> <qualifying data, hex> <out dir>
import sys

from tpm2_pytss import ESAPI, TCTILdr
from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPMA_OBJECT
from tpm2_pytss.types import TPM2B_DATA, TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMT_SIG_SCHEME

conf, qualifying, out = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
with ESAPI(TCTILdr("swtpm", conf)) as esys:
    primary = esys.create_primary(
        TPM2B_SENSITIVE_CREATE(),
        TPM2B_PUBLIC.parse("ecc256:null:aes128cfb",
                           objectAttributes=TPMA_OBJECT.DEFAULT_TPM2_TOOLS_CREATEPRIMARY_ATTRS),
        ESYS_TR.OWNER)[0]
    bound = (TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
             | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT)

    def make(attrs):
        priv, pub = esys.create(primary, TPM2B_SENSITIVE_CREATE(),
                                TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=attrs))[:2]
        return esys.load(primary, priv, pub), pub

    ak, ak_pub = make(bound | TPMA_OBJECT.RESTRICTED)
    key, key_pub = make(bound)
    attest, sig = esys.certify(key, ak, TPM2B_DATA(qualifying), TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL))
    for name, data in (("attest.bin", bytes(attest)), ("sig.bin", sig.marshal()),
                       ("key.pub", key_pub.publicArea.marshal()), ("ak.pub", ak_pub.publicArea.marshal())):
        with open(out + "/" + name, "wb") as f:
            f.write(data)
