# Sourced by the other scripts: installs the Debian packages a build or a
# test run needs, only those that are missing, and only once per machine.
# Debian 12; run as root (or with passwordless sudo).

# rustup puts cargo here; CI and fresh shells may not have it on PATH yet.
export PATH="$HOME/.cargo/bin:$PATH"

ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "scripts: installing ${#missing[@]} Debian packages (a few minutes on a fresh machine): ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Postfix asks how to configure itself: the tests write their own config.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    # Debian must not start the servers it installs on their default ports
    # (the tests start their own on loopback). The guard exists only while
    # apt runs: a policy-rc.d left behind would stop every service that any
    # later install brings, for good.
    (
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
            printf '#!/bin/sh\n# huytk scripts/deps.sh: removed when its apt-get ends\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
            $sudo chmod +x /usr/sbin/policy-rc.d
        fi
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            -o Dpkg::Use-Pty=0 "${missing[@]}"
    ) >&2
    # apt-get can end well having skipped a package it could not find.
    for p in "${missing[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            echo "scripts: apt-get could not install $p" >&2
            return 1
        fi
    done
}

# What building huytk needs: libheif is built from source (Debian's is too
# old for libheif-rs) with cmake; libnuma for its HEVC codec.
BUILD_PACKAGES=(cmake g++ pkg-config libheif-dev libnuma-dev)

# The real servers the integration tests start on loopback, the browser the
# console tests drive, the SMS gateway, the directory of accounts, and
# faketime, which runs the clock-sensitive tests at other hours of the day,
# the platform root certificates the TLS clients trust (src/net/tls.rs),
# and what checks the Debian package (scripts/test-package): lintian,
# systemd-analyze (package systemd; it need not be PID 1), dpkg-shlibdeps
# (dpkg-dev, for cargo-deb), curl, strace; and for the sender-authentication
# test (tests/sender_auth_e2e.rs) an authoritative DNS server (nsd) and the
# DKIM signer/verifier and DMARC milters (opendkim, opendkim-tools, opendmarc).
TEST_PACKAGES=(ca-certificates dovecot-core dovecot-imapd dovecot-lmtpd postfix postgresql openssl chromium chromium-driver fonts-dejavu-core kannel kannel-extras slapd ldap-utils faketime lintian systemd dpkg-dev curl strace prometheus nsd opendkim opendkim-tools opendmarc)

# schemathesis checks the API against docs/openapi.json (scripts/schemathesis).
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
    if schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
        return 0
    fi
    command -v pip >/dev/null || ensure_packages python3-pip
    echo "scripts: installing schemathesis $SCHEMATHESIS_VERSION (pip)" >&2
    pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION" 2>/dev/null ||
        pip install --quiet --break-system-packages "schemathesis==$SCHEMATHESIS_VERSION"
}

# cargo-deb builds the Debian package (scripts/test-package, README "Install
# on a server") from the release binary.
CARGO_DEB_VERSION=3.8.0
ensure_cargo_deb() {
    if cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
        return 0
    fi
    echo "scripts: installing cargo-deb $CARGO_DEB_VERSION (crates.io, about a minute)" >&2
    cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb
}
