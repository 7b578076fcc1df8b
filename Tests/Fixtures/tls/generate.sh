#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with the openssl command line, into the directory given (created if
# missing). Nothing generated is committed: the unit tests (HostTests/TLSSetupTests) and the integration tests
# (Integration/test_tls.py) run this into a temporary directory. EC P-256 keys, valid for two days.
#
#   ca.pem / ca.key                 a CA (basic constraints CA:TRUE)
#   server.pem / server.key         issued by ca, SAN IP 127.0.0.1 and DNS localhost (server and client auth)
#   client.pem / client.key         issued by ca (client auth)
#   other-ca.pem / other-ca.key     a second, unrelated CA
#   other-client.pem / .key         issued by other-ca
#   other-server.pem / .key         issued by other-ca, SAN IP 127.0.0.1 and DNS localhost
#   named-server.pem / .key         issued by ca, SAN DNS localhost only (checked by name, not by the address dialled)
set -euo pipefail
out=${1:?usage: generate.sh OUTPUT_DIRECTORY}
mkdir -p "$out"
cd "$out"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() { # name, common name
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() { # name, common name, issuer, extended key usage, subjectAltName (optional)
    key "$1"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature"
        echo "extendedKeyUsage=$4"
        if [ -n "${5:-}" ]; then echo "subjectAltName=$5"; fi
    } > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -out "$1.pem" -days 2 \
        -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "s2s-proxy test CA"
ca other-ca "unrelated test CA"
leaf server localhost ca "serverAuth,clientAuth" "IP:127.0.0.1,DNS:localhost"
leaf client "s2s-proxy test client" ca "clientAuth"
leaf other-client "unrelated client" other-ca "clientAuth"
leaf other-server localhost other-ca "serverAuth" "IP:127.0.0.1,DNS:localhost"
leaf named-server localhost ca "serverAuth" "DNS:localhost"
rm -f ./*.srl
