#!/usr/bin/env bash
# install-deps.sh installs the system packages the tests need, when missing.
# Each line of NEEDS is "<probe> <debian-package>": the package is installed
# when the probe (a command name, or an absolute file path) is absent. All
# missing packages are installed with one `apt-get update` and one
# `apt-get install`. Nothing is done when everything is present.
set -euo pipefail

NEEDS=(
	"gcc gcc"
	"/usr/include/openssl/evp.h libssl-dev"
	"swtpm swtpm"
	"tpm2_certify tpm2-tools"
	"/usr/lib/python3/dist-packages/tpm2_pytss python3-tpm2-pytss"
	"/usr/lib/softhsm/libsofthsm2.so softhsm2"
	"softhsm2-util softhsm2"
	"pkcs11-tool opensc"
	"openssl openssl"
	"curl curl"
	"/usr/lib/postgresql postgresql"
	"node nodejs"
	"npm npm"
)

missing=()
for need in "${NEEDS[@]}"; do
	probe=${need%% *}
	pkg=${need#* }
	if [[ $probe == /* ]]; then
		[[ -e $probe ]] && continue
	else
		command -v "$probe" >/dev/null 2>&1 && continue
	fi
	missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	exit 0
fi
# De-duplicate while keeping order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
