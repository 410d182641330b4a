#!/bin/sh
# Registers the namespace payrecon uses (TEMPORAL_NAMESPACE) when it is missing, then waits
# until the frontend serves it: a new namespace takes a few seconds to reach every service,
# and payrecon's `temporal setup` runs right after this. Safe to run again.
set -eu
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-24h}"

if temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
    echo "namespace $namespace already registered"
else
    # A concurrent run may register it first; the wait below is what must succeed.
    temporal operator namespace create --namespace "$namespace" --retention "$retention" || true
fi

attempt=0
until temporal operator search-attribute list --namespace "$namespace" >/dev/null 2>&1; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 60 ]; then
        echo "namespace $namespace is still not served after 60 seconds" >&2
        exit 1
    fi
    sleep 1
done
echo "namespace $namespace ready"
