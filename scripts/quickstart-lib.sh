# Sourced by the quickstart scripts: run a curl command, show its output, and check the HTTP
# status it got, so a quickstart that does not do what it says fails instead of printing on.

failed=0

# expect CODE COMMAND... : runs COMMAND (a curl, possibly behind `ip netns exec`) with
# `-w` appended, prints its output, the HTTP version and the status, and records a status
# mismatch.
expect() {
    local want=$1
    shift
    printf '\n$ %s\n' "$*"
    local out
    out=$("$@" -w '\n%{http_version} %{http_code}' 2>&1) || true
    local last=${out##*$'\n'}
    local body=${out%$'\n'*}
    local code=${last##* }
    [ -n "$body" ] && printf '%s\n' "$body"
    if [ "$code" = "$want" ]; then
        echo "-> HTTP/${last% *} $code (expected)"
    else
        echo "-> HTTP/${last% *} $code, expected $want" >&2
        failed=1
    fi
}

# expectations_met NAME: exits 1 when a request above got another status than expected.
expectations_met() {
    if [ "$failed" != 0 ]; then
        echo "$1: some requests did not get the status they should have (see the '->' lines above)" >&2
        exit 1
    fi
}
