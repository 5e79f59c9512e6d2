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
    echo "scripts: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    # Debian must not start the servers it installs on their default ports;
    # the tests start their own on loopback.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
    fi
    # Postfix asks how to configure itself: the tests write their own config.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building huytk needs: libheif is built from source (Debian's is too
# old for libheif-rs) with cmake; libnuma for its HEVC codec.
BUILD_PACKAGES=(cmake g++ pkg-config libheif-dev libnuma-dev)

# The real servers the integration tests start on loopback, and the browser
# the console tests drive, the SMS gateway and the directory of accounts.
TEST_PACKAGES=(dovecot-core dovecot-imapd dovecot-lmtpd postfix postgresql openssl chromium chromium-driver fonts-dejavu-core kannel kannel-extras slapd ldap-utils)
