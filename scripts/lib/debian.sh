# shellcheck shell=bash
# Installing a Debian package for a test server without starting the system's own instance of it
# (postgresql and mariadb-server start a service on their default ports when installed). Sourced.
#
#   debian_install NAME PACKAGE...   apt-get install the packages (NAME prefixes messages), with
#                                    invoke-rc.d told by a temporary policy-rc.d to start nothing

debian_install() {
    local name="$1" policy=/usr/sbin/policy-rc.d ours=0 rc=0
    shift
    command -v apt-get >/dev/null 2>&1 || { echo "$name: missing $* and no apt-get to install them" >&2; return 1; }
    echo "$name: installing $*" >&2
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# lifeboat test scripts: start no service while installing\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        ours=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 || rc=$?
    ((ours)) && rm -f "$policy"
    return "$rc"
}
