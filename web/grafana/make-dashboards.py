#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""make-dashboards.py - writes dashboards/*.json, the sample Grafana
dashboards for bpftraced (grafana-pcp's bpftrace data source). The JSON
files are checked in; run this after changing a panel here.

Every script is a tracepoint script (no kprobes, no kernel headers), so
it runs wherever bpftrace can attach tracepoints.
"""
import json
import os

DS = {"type": "performancecopilot-bpftrace-datasource",
      "uid": "${datasource}"}

RUNQLAT = """// include: @usecs
tracepoint:sched:sched_wakeup,
tracepoint:sched:sched_wakeup_new
{
	@qtime[args->pid] = nsecs;
}

tracepoint:sched:sched_switch
{
	if (args->prev_state == 0) {
		@qtime[args->prev_pid] = nsecs;
	}
	$ns = @qtime[args->next_pid];
	if ($ns) {
		@usecs = hist((nsecs - $ns) / 1000);
	}
	delete(@qtime[args->next_pid]);
}
"""

BIOLAT = """// include: @usecs
tracepoint:block:block_rq_issue
{
	@start[args->dev, args->sector] = nsecs;
}

tracepoint:block:block_rq_complete
/@start[args->dev, args->sector]/
{
	@usecs = hist((nsecs - @start[args->dev, args->sector]) / 1000);
	delete(@start[args->dev, args->sector]);
}
"""

SYSCALLS = """tracepoint:raw_syscalls:sys_enter
{
	@syscalls[comm] = count();
}
"""

BIOSIZE = """tracepoint:block:block_rq_issue
{
	@bytes[args->rwbs] = sum(args->bytes);
}
"""

TCPCONNECT = """// table-retain-lines: 15
BEGIN
{
	printf("time,pid,comm,daddr,dport\\n");
}

tracepoint:sock:inet_sock_set_state
/args->protocol == 6 && args->oldstate == 2 && args->newstate == 1/
{
	time("%H:%M:%S,");
	printf("%d,%s,%s,%d\\n", pid, comm, ntop(args->daddr), args->dport);
}
"""

EXECS = """// table-retain-lines: 15
BEGIN
{
	printf("time,pid,comm,filename\\n");
}

tracepoint:sched:sched_process_exec
{
	time("%H:%M:%S,");
	printf("%d,%s,%s\\n", pid, comm, str(args->filename));
}
"""


def target(expr, fmt, ref="A", legend=""):
    t = {"datasource": DS, "refId": ref, "expr": expr, "format": fmt}
    if legend:
        t["legendFormat"] = legend
    return t


def panel(pid, title, ptype, x, y, w, h, targets, **extra):
    p = {"id": pid, "title": title, "type": ptype, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets}
    p.update(extra)
    return p


def heatmap(pid, title, expr, x, y):
    return panel(pid, title, "heatmap", x, y, 12, 9,
                 [target(expr, "heatmap")],
                 options={"calculate": False, "yAxis": {"unit": "µs"},
                          "color": {"scheme": "Spectral", "mode": "scheme"}},
                 maxDataPoints=60)


def dashboard():
    panels = [
        panel(1, "About", "text", 0, 0, 24, 2, [], options={
            "mode": "markdown",
            "content": "Live eBPF data from **bpftraced**: each panel sends "
                       "its bpftrace script to the daemon, which runs it and "
                       "serves its variables. Start bpftraced with "
                       "`--control=loopback` (or `--control=auth` with "
                       "Basic auth in the data source)."}),
        heatmap(2, "CPU run queue latency (µs)", RUNQLAT, 0, 2),
        heatmap(3, "Block I/O latency (µs)", BIOLAT, 12, 2),
        panel(4, "System calls per second by process", "timeseries", 0, 11,
              12, 9, [target(SYSCALLS, "time_series")],
              fieldConfig={"defaults": {"unit": "ops"}, "overrides": []},
              options={"legend": {"displayMode": "table",
                                  "placement": "right",
                                  "calcs": ["lastNotNull"]}}),
        panel(5, "Block I/O bytes per second by type", "timeseries", 12, 11,
              12, 9, [target(BIOSIZE, "time_series")],
              fieldConfig={"defaults": {"unit": "Bps"}, "overrides": []}),
        panel(6, "New TCP connections", "table", 0, 20, 12, 9,
              [target(TCPCONNECT, "csv_table")]),
        panel(7, "New processes", "table", 12, 20, 12, 9,
              [target(EXECS, "csv_table")]),
    ]
    return {
        "uid": "bpftraced-system",
        "title": "bpftraced: system analysis",
        "tags": ["bpftraced", "bpftrace", "eBPF"],
        "timezone": "browser",
        "schemaVersion": 38,
        "version": 1,
        "editable": True,
        "refresh": "1s",
        "time": {"from": "now-2m", "to": "now"},
        "timepicker": {"refresh_intervals": ["1s", "2s", "5s", "10s"]},
        "templating": {"list": [{
            "name": "datasource", "label": "bpftraced", "type": "datasource",
            "query": "performancecopilot-bpftrace-datasource",
            "current": {"text": "bpftraced", "value": "bpftraced"},
            "hide": 0, "refresh": 1}]},
        "panels": panels,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "dashboards", "bpftraced-system-analysis.json")
    with open(out, "w") as f:
        json.dump(dashboard(), f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
