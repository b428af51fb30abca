#!/usr/bin/env bash
# Starts a single-node Garage (S3-compatible object store) for the tests.
#
#   tests/s3/start-garage.sh DIR [S3_PORT RPC_PORT ADMIN_PORT [WATCH_PID]]
#
# DIR holds the configuration, metadata, data, garage.log and garage.pid; an
# existing DIR is started again with its data (a restart). Ports default to
# 3900/3901/3903. With WATCH_PID, Garage is stopped once that process is
# gone (the test binary that started it); if DIR/remove-when-done exists
# then, DIR is removed as well. Prints `export` lines for the
# tests (OPC_TEST_S3_*, AWS_*), ready for `eval`; fails when Garage is not
# installed or does not come up within 20 s.
set -euo pipefail
dir=$1
s3_port=${2:-3900}
rpc_port=${3:-3901}
admin_port=${4:-3903}
watch=${5:-}
garage=${GARAGE_BIN:-$(command -v garage || echo "$HOME/.cargo/bin/garage")}
if [ ! -x "$garage" ]; then
    echo "start-garage.sh: garage not found (install: cargo install garage --version 2.5.0 --locked)" >&2
    exit 1
fi
key=GK000000000000000000000001
secret=0000000000000000000000000000000000000000000000000000000000000001
bucket=opc-test
mkdir -p "$dir/meta" "$dir/data"
if [ ! -f "$dir/garage.toml" ]; then
    cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "test-admin-token"
TOML
    chmod 600 "$dir/garage.toml" # garage refuses a world-readable secret
fi
GARAGE_DEFAULT_ACCESS_KEY=$key GARAGE_DEFAULT_SECRET_KEY=$secret GARAGE_DEFAULT_BUCKET=$bucket \
    nohup "$garage" -c "$dir/garage.toml" server --single-node --default-bucket \
    >>"$dir/garage.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/garage.pid"
if [ -n "$watch" ]; then
    # Stops Garage when the process that wanted it is gone.
    # With DIR/remove-when-done present by then, DIR is removed too.
    nohup bash -c "while kill -0 $watch 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done
        kill $pid 2>/dev/null; while kill -0 $pid 2>/dev/null; do sleep 0.2; done
        if [ -e '$dir/remove-when-done' ]; then rm -rf '$dir'; fi" \
        >/dev/null 2>&1 </dev/null &
fi
ready=""
for _ in $(seq 200); do
    if curl -sf -o /dev/null "http://127.0.0.1:$admin_port/health" \
        && curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; then
        ready=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "start-garage.sh: garage did not come up; its log ($dir/garage.log):" >&2
    tail -20 "$dir/garage.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
fi
cat <<ENV
export OPC_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export OPC_TEST_S3_BUCKET=$bucket
export OPC_TEST_S3_ACCESS_KEY=$key
export OPC_TEST_S3_SECRET_KEY=$secret
export OPC_TEST_S3_REGION=garage
export OPC_TEST_GARAGE_PID=$pid
ENV
