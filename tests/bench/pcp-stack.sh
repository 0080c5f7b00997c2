#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bench/pcp-stack.sh install|remove - puts PCP's Python bpftrace PMDA
# into the running pmcd (pmproxy on :44322 in front) for the minutes a
# benchmark measures the PCP stack, and takes it out again.
#   install: saves bpftrace.conf and pmcd.conf, turns on dynamic scripts
#            without auth (pmproxy REST is unauthenticated), raises
#            max_throughput (a 100,000-key map is a 2 MB line), points
#            bpftrace_path at a wrapper with BPFTRACE_MAP_KEYS_MAX=200000,
#            runs ./Install with /usr/bin/python3 (not a pyenv shim).
#   remove:  ./Remove, then restores both files byte for byte.
set -u
CONF=/etc/pcp/bpftrace/bpftrace.conf
PMCDCONF=/etc/pcp/pmcd/pmcd.conf
SAVE=/var/tmp/bpftraced-bench-pcp
PMDADIR=/var/lib/pcp/pmdas/bpftrace
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

case "${1:-}" in
install)
	mkdir -p "$SAVE"
	if [ ! -e "$SAVE/bpftrace.conf" ]; then	# never overwrite a saved copy
		cp -p "$CONF" "$SAVE/bpftrace.conf" || exit 1
		cp -p "$PMCDCONF" "$SAVE/pmcd.conf" || exit 1
	fi
	cat > "$SAVE/bpftrace-wrapper" <<'W'
#!/bin/sh
BPFTRACE_MAP_KEYS_MAX=200000 exec /usr/bin/bpftrace "$@"
W
	chmod 755 "$SAVE/bpftrace-wrapper"
	sed -e 's/^enabled = .*/enabled = true/' \
	    -e 's/^auth_enabled = .*/auth_enabled = false/' \
	    -e 's/^max_throughput = .*/max_throughput = 67108864/' \
	    -e "s|^bpftrace_path = .*|bpftrace_path = $SAVE/bpftrace-wrapper|" \
	    "$SAVE/bpftrace.conf" > "$CONF.bench" && cat "$CONF.bench" > "$CONF" &&
	    rm -f "$CONF.bench"
	cd "$PMDADIR" || exit 1
	PCP_PYTHON_PROG=/usr/bin/python3 ./Install </dev/null >"$SAVE/install.log" 2>&1
	if grep -q '^bpftrace.*[[:space:]]python3 ' "$PMCDCONF"; then
		sed -i 's|^\(bpftrace.*[[:space:]]\)python3 |\1/usr/bin/python3 |' "$PMCDCONF"
		kill -HUP "$(cat /var/run/pcp/pmcd.pid)"
		sleep 2
	fi
	i=0
	while [ $i -lt 30 ]; do
		pminfo -f bpftrace.info.scripts_json 2>/dev/null | grep -q 'value "' && {
			echo "PMDA installed: $(grep '^bpftrace' "$PMCDCONF")"; exit 0; }
		sleep 1; i=$((i + 1))
	done
	cat "$SAVE/install.log" >&2
	echo "PMDA did not come up" >&2
	exit 1
	;;
remove)
	cd "$PMDADIR" && ./Remove </dev/null >"$SAVE/remove.log" 2>&1
	if [ -e "$SAVE/bpftrace.conf" ]; then
		cat "$SAVE/bpftrace.conf" > "$CONF"
		if ! cmp -s "$SAVE/pmcd.conf" "$PMCDCONF"; then
			cp -p "$SAVE/pmcd.conf" "$PMCDCONF"
			kill -HUP "$(cat /var/run/pcp/pmcd.pid)"
		fi
		cmp -s "$SAVE/bpftrace.conf" "$CONF" && cmp -s "$SAVE/pmcd.conf" "$PMCDCONF" &&
		    rm -f "$SAVE/bpftrace.conf" "$SAVE/pmcd.conf"
	fi
	echo "pmcd.conf bpftrace lines: $(grep -c bpftrace "$PMCDCONF")"
	;;
*)
	echo "usage: $0 install|remove" >&2; exit 2 ;;
esac
