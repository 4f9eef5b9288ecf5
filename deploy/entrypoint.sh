#!/bin/sh
# reap-entrypoint: start-up logic of the REAP Tracker container (installed as
# /usr/local/bin/reap-entrypoint). Kept in a script so the tests can run it without a container.
#
#   reap-entrypoint [reap arguments...]     (no arguments: `serve`)
#
# Before `serve` or `socket` it runs `reap db upgrade`, so a single container with no separate
# migration step works. Set REAP_MIGRATE_ON_START=false when something else migrates once per
# deploy (compose.yaml's one-shot `migrate` service, a Kubernetes Job), so that several instances
# starting together do not all migrate. REAP_BIN overrides the `reap` executable (tests use it).
set -eu

reap="${REAP_BIN:-reap}"

if [ "$#" -eq 0 ]; then
    set -- serve
fi

migrate=no
skipped=""
case "$1" in
    serve | socket)
        # The spellings of "off" that the bot's own boolean settings (pydantic) accept.
        case "$(printf '%s' "${REAP_MIGRATE_ON_START:-true}" | tr '[:upper:]' '[:lower:]')" in
            false | 0 | no | off | f | n) skipped=" without migrations (REAP_MIGRATE_ON_START=${REAP_MIGRATE_ON_START})" ;;
            *) migrate=yes ;;
        esac
        ;;
esac

if [ "$migrate" = yes ]; then
    printf 'reap-entrypoint: running database migrations (reap db upgrade), then reap %s\n' "$*" >&2
    "$reap" db upgrade
else
    printf 'reap-entrypoint: running reap %s%s\n' "$*" "$skipped" >&2
fi

exec "$reap" "$@"
