-- SPDX-License-Identifier: MIT
-- 001_init.sql - bpftraced state: registered scripts, their instance ids
-- and the audit log of control actions. Applied by store.c inside one
-- transaction, after which PRAGMA user_version is 1. Do not edit once
-- released: add 002_*.sql instead.

-- One row per registered (live) script; deregistered scripts are deleted.
CREATE TABLE scripts (
	script_id	TEXT	NOT NULL PRIMARY KEY,	-- "s" + 32 hex
	name		TEXT	NOT NULL UNIQUE,
	named		INTEGER	NOT NULL CHECK (named IN (0, 1)),
	code		BLOB	NOT NULL,		-- byte-exact script text
	owner		TEXT,				-- user, NULL if anonymous
	peer		TEXT,				-- client address
	created_ms	INTEGER	NOT NULL,		-- unix ms
	last_fetch_ms	INTEGER	NOT NULL,		-- unix ms
	want_run	INTEGER	NOT NULL CHECK (want_run IN (0, 1)),
	restart		TEXT,				-- restart policy
	cluster		INTEGER	NOT NULL UNIQUE		-- PMID cluster
			CHECK (cluster >= 0 AND cluster < 4096)
);

-- Instance name -> id, per script and variable, so that instance ids stay
-- stable across restarts.
CREATE TABLE instances (
	script_id	TEXT	NOT NULL REFERENCES scripts (script_id),
	var		TEXT	NOT NULL,
	name		TEXT	NOT NULL,
	inst_id		INTEGER	NOT NULL		-- uint32
			CHECK (inst_id >= 0 AND inst_id <= 4294967295),
	PRIMARY KEY (script_id, var, name),
	UNIQUE (script_id, var, inst_id)
) WITHOUT ROWID;

-- Append-only log of control actions (register, start, stop, deregister,
-- expire, restore).
CREATE TABLE audit (
	seq		INTEGER	PRIMARY KEY,
	time_ms		INTEGER	NOT NULL,		-- unix ms
	user		TEXT,
	peer		TEXT,
	action		TEXT	NOT NULL,
	target		TEXT,
	ok		INTEGER	NOT NULL CHECK (ok IN (0, 1)),
	message		TEXT
);
CREATE INDEX audit_time ON audit (time_ms);
