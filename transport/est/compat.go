package est

import "crypto/x509/pkix"

type pkixExtension = pkix.Extension
