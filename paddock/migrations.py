"""Paddock's schema as numbered migrations (sqlite-utils 4 ``Migrations``).

Never edit a migration that has shipped: add ``m003_...`` instead. :class:`paddock.store.Store`
applies each pending migration in its own ``BEGIN IMMEDIATE`` transaction.

Each migration has a PostgreSQL twin of the same name in :mod:`paddock.store.pg_migrations`;
add both (tests/test_store_postgres.py holds the names, their order and the two schemas'
tables and columns together).
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("paddock")


@MIGRATIONS()
def m001_ledger(db: Database) -> None:
    """Accounts, two-phase holds and the append-only journal."""
    db.executescript(
        """
        CREATE TABLE guild_settings (
            guild_id INTEGER PRIMARY KEY,
            policy TEXT NOT NULL DEFAULT 'personal'
                CHECK (policy IN ('personal', 'pool', 'personal_then_pool')),
            allowance INTEGER NOT NULL DEFAULT 0 CHECK (allowance >= 0),
            period TEXT NOT NULL DEFAULT 'none'
                CHECK (period IN ('daily', 'weekly', 'monthly', 'none')),
            max_job_cost INTEGER CHECK (max_job_cost >= 0),
            member_spend INTEGER CHECK (member_spend >= 0),
            member_spend_period TEXT NOT NULL DEFAULT 'daily'
                CHECK (member_spend_period IN ('daily', 'weekly', 'monthly')),
            daily_ceiling INTEGER CHECK (daily_ceiling >= 0),
            member_jobs INTEGER CHECK (member_jobs >= 0),
            server_jobs INTEGER CHECK (server_jobs >= 0)
        );

        CREATE TABLE role_allowances (
            guild_id INTEGER NOT NULL,
            role_id INTEGER NOT NULL,
            allowance INTEGER NOT NULL CHECK (allowance >= 0),
            period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'none')),
            PRIMARY KEY (guild_id, role_id)
        ) WITHOUT ROWID;

        -- Cached balances. Each column always equals the sum of its journal deltas.
        -- allowance: what is left of the periodic allowance; granted: moderator grants
        -- (and pool funding); held: pending holds. Available = allowance + granted - held.
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('member', 'pool')),
            user_id INTEGER NOT NULL,  -- 0 for the pool
            allowance INTEGER NOT NULL DEFAULT 0 CHECK (allowance >= 0),
            granted INTEGER NOT NULL DEFAULT 0 CHECK (granted >= 0),
            held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
            period_key TEXT,  -- the allowance period last refilled, e.g. 'D2025-03-01'
            blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
            CHECK (allowance + granted >= held),
            UNIQUE (guild_id, kind, user_id)
        );

        -- Two-phase transfers: a hold is pending until settled or refunded, exactly once.
        CREATE TABLE holds (
            job_id TEXT PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            personal_account INTEGER NOT NULL REFERENCES accounts(id),
            pool_account INTEGER REFERENCES accounts(id),
            amount INTEGER NOT NULL CHECK (amount >= 0),
            from_personal INTEGER NOT NULL CHECK (from_personal >= 0),
            from_pool INTEGER NOT NULL CHECK (from_pool >= 0),
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'settled', 'refunded')),
            charged INTEGER CHECK (charged BETWEEN 0 AND amount),
            personal_available INTEGER NOT NULL,  -- right after reserving: the first reply
            pool_available INTEGER,
            reserved_at TEXT NOT NULL,
            resolved_at TEXT,
            CHECK (from_personal + from_pool = amount)
        );
        CREATE INDEX holds_pending ON holds (guild_id, user_id) WHERE state = 'pending';
        CREATE INDEX holds_member_spend ON holds (guild_id, user_id, reserved_at);
        CREATE INDEX holds_guild_spend ON holds (guild_id, reserved_at);

        -- A hold changes once, from pending to settled or refunded, and is never deleted.
        CREATE TRIGGER holds_resolve_once BEFORE UPDATE ON holds
        WHEN OLD.state != 'pending' OR NEW.state = 'pending'
            OR NEW.job_id IS NOT OLD.job_id OR NEW.amount IS NOT OLD.amount
            OR NEW.from_personal IS NOT OLD.from_personal OR NEW.from_pool IS NOT OLD.from_pool
            OR NEW.personal_account IS NOT OLD.personal_account
            OR NEW.pool_account IS NOT OLD.pool_account
        BEGIN
            SELECT RAISE(ABORT, 'a hold is resolved exactly once');
        END;
        CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
        BEGIN
            SELECT RAISE(ABORT, 'holds are never deleted');
        END;

        -- Every change, append-only. Settings changes have no account and zero deltas.
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            guild_id INTEGER NOT NULL,
            user_id INTEGER,          -- the member concerned (also on pool entries)
            account_id INTEGER REFERENCES accounts(id),
            kind TEXT NOT NULL,
            job_id TEXT,
            d_allowance INTEGER NOT NULL DEFAULT 0,
            d_granted INTEGER NOT NULL DEFAULT 0,
            d_held INTEGER NOT NULL DEFAULT 0,
            available INTEGER,        -- the account's available credits after this entry
            actor_id INTEGER,         -- the moderator, for adjustments
            reason TEXT,
            detail TEXT               -- JSON, for settings changes
        );
        CREATE INDEX journal_member ON journal (guild_id, user_id, id);
        CREATE INDEX journal_guild ON journal (guild_id, id);
        CREATE INDEX journal_account ON journal (account_id);
        CREATE INDEX journal_job ON journal (job_id) WHERE job_id IS NOT NULL;
        CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN
            SELECT RAISE(ABORT, 'the journal is append-only');
        END;
        CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN
            SELECT RAISE(ABORT, 'the journal is append-only');
        END;
        """
    )


@MIGRATIONS()
def m002_jobs(db: Database) -> None:
    """Everything needed to finish a generation job after a restart."""
    db.executescript(
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            channel_id INTEGER,
            user_id INTEGER NOT NULL,
            interaction_token TEXT,
            token_expires_at TEXT,
            progress_message_id INTEGER,
            request TEXT NOT NULL DEFAULT '{}',  -- the normalised request, JSON
            provider TEXT,
            provider_task_id TEXT,
            state TEXT NOT NULL CHECK (state IN ('accepted', 'submitted', 'running',
                'succeeded', 'failed', 'delivered', 'cancelled')),
            estimated_credits INTEGER NOT NULL DEFAULT 0 CHECK (estimated_credits >= 0),
            charged_credits INTEGER CHECK (charged_credits >= 0),
            result_url TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            submitted_at TEXT,
            started_at TEXT,
            finished_at TEXT,
            delivered_at TEXT,
            deadline_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            delivery_attempts INTEGER NOT NULL DEFAULT 0,
            delivery_error TEXT,
            idempotency_key TEXT UNIQUE
        );
        CREATE INDEX jobs_member ON jobs (guild_id, user_id, created_at);
        CREATE INDEX jobs_unfinished ON jobs (state)
            WHERE state NOT IN ('delivered', 'cancelled');
        """
    )


@MIGRATIONS()
def m003_submit_attempts(db: Database) -> None:
    """When a submit was first sent, so a restart never sends it blindly again."""
    db.execute("ALTER TABLE jobs ADD COLUMN submit_attempted_at TEXT")


@MIGRATIONS()
def m004_guild_config(db: Database) -> None:
    """Where /video may run, the moderator role, and an append-only log of their changes."""
    db.executescript(
        """
        CREATE TABLE guild_config (
            guild_id INTEGER PRIMARY KEY,
            moderator_role_id INTEGER
        );

        -- No rows for a server: /video is allowed in every channel.
        CREATE TABLE video_channels (
            guild_id INTEGER NOT NULL,
            channel_id INTEGER NOT NULL,
            PRIMARY KEY (guild_id, channel_id)
        ) WITHOUT ROWID;

        CREATE TABLE config_changes (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            guild_id INTEGER NOT NULL,
            setting TEXT NOT NULL CHECK (setting IN ('video_channels', 'moderator_role')),
            before TEXT NOT NULL,  -- JSON: sorted channel ids, or a role id or null
            after TEXT NOT NULL,
            actor_id INTEGER NOT NULL,
            reason TEXT
        );
        CREATE INDEX config_changes_guild ON config_changes (guild_id, id);
        CREATE TRIGGER config_changes_no_update BEFORE UPDATE ON config_changes
        BEGIN
            SELECT RAISE(ABORT, 'config changes are append-only');
        END;
        CREATE TRIGGER config_changes_no_delete BEFORE DELETE ON config_changes
        BEGIN
            SELECT RAISE(ABORT, 'config changes are append-only');
        END;
        """
    )


@MIGRATIONS()
def m005_refill_times_and_settle_costs(db: Database) -> None:
    """When each member account was last refilled, and the cost each settle asked for.

    ``accounts.refilled_at`` replaces ``period_key``: a key per period could not tell a new
    period from another allowance's period, so alternating role sets refilled a member
    again and again. An existing account counts as refilled at the later of its last
    refill entry and the start of the period its key named (else now). ``holds.requested``
    keeps the ``actual`` a settle was given, before capping at the hold, so that a
    disagreeing repeat is told apart from a true one.
    """
    db.executescript(
        """
        ALTER TABLE accounts ADD COLUMN refilled_at TEXT;
        UPDATE accounts SET refilled_at = COALESCE(NULLIF(max(
            COALESCE((SELECT MAX(j.at) FROM journal j
                       WHERE j.account_id = accounts.id AND j.kind = 'refill'), ''),
            CASE WHEN period_key LIKE '%:%'
                 THEN substr(period_key, instr(period_key, ':') + 1) || 'T00:00:00.000000Z'
                 ELSE '' END
        ), ''), strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
         WHERE kind = 'member';
        ALTER TABLE accounts DROP COLUMN period_key;
        ALTER TABLE holds ADD COLUMN requested INTEGER CHECK (requested >= 0);
        """
    )


@MIGRATIONS()
def m006_metrics_indexes(db: Database) -> None:
    """Covering indexes for /metrics, so a scrape reads two small indexes, not two tables.

    With 100,000 jobs the jobs-by-state-and-provider count falls from about 65 ms (a scan
    of every job's row, request JSON included) to about 7 ms, and the credit totals from
    about 20 ms to about 9 ms.
    """
    db.executescript(
        """
        CREATE INDEX jobs_state_provider ON jobs (state, provider);
        CREATE INDEX holds_state_amounts ON holds (state, amount, charged);
        """
    )


@MIGRATIONS()
def m007_health_probe(db: Database) -> None:
    """One row that /healthz rewrites to prove the database takes writes."""
    db.execute(
        """
        CREATE TABLE health_probe (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            at TEXT NOT NULL
        )
        """
    )


@MIGRATIONS()
def m008_render_times(db: Database) -> None:
    """How long renders took, so polling stays close to the expected finish after a restart.

    ``after``: seconds from submission when the render was last seen still running;
    ``done_by``: when it was first seen done. One row per finished render, the newest
    few hundred of each kind kept (see `paddock.render_history`).
    """
    db.executescript(
        """
        CREATE TABLE render_times (
            id INTEGER PRIMARY KEY,
            provider TEXT NOT NULL,
            mode TEXT NOT NULL,
            resolution TEXT,
            duration INTEGER,
            after REAL NOT NULL CHECK (after >= 0),
            done_by REAL NOT NULL CHECK (done_by >= after),
            at TEXT NOT NULL
        );
        CREATE INDEX render_times_kind ON render_times (provider, mode, resolution, duration, id);
        """
    )


@MIGRATIONS()
def m009_undelivered_jobs(db: Database) -> None:
    """When a finished video was given up on because Discord took it nowhere (channel gone,
    permission missing): the job is over, its credits returned, and /jobs list says so."""
    db.execute("ALTER TABLE jobs ADD COLUMN undelivered_at TEXT")


@MIGRATIONS()
def m010_member_slots(db: Database) -> None:
    """A server's cap on one member's jobs at providers at once (NULL: no cap); the rest
    of the member's jobs wait in line while other members' go first."""
    db.execute(
        "ALTER TABLE guild_settings ADD COLUMN member_slots INTEGER DEFAULT 2"
        " CHECK (member_slots >= 1)"
    )


@MIGRATIONS()
def m011_job_attempts(db: Database) -> None:
    """Where each job was sent, and how each attempt ended, so a failover survives a restart.

    ``jobs.route``: for a ``provider: auto`` job, JSON of every provider that can make it,
    with the request resolved for it and its price (NULL: the member chose a provider).
    ``job_attempts``: append-only, one row per event of a submit: ``sent`` just before the
    request leaves, then ``accepted`` (with the task id), ``refused`` (certainly no task
    was created), ``unknown``, ``render_failed`` or ``rendered``; ``skipped`` when its turn
    came while the provider was cooling down, so it went elsewhere unsent.
    """
    db.executescript(
        """
        ALTER TABLE jobs ADD COLUMN route TEXT;
        CREATE TABLE job_attempts (
            id INTEGER PRIMARY KEY,
            job_id TEXT NOT NULL REFERENCES jobs(id),
            provider TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'accepted', 'refused', 'unknown',
                'render_failed', 'rendered', 'skipped')),
            task_id TEXT,
            detail TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX job_attempts_job ON job_attempts (job_id, id);
        CREATE TRIGGER job_attempts_no_update BEFORE UPDATE ON job_attempts
        BEGIN
            SELECT RAISE(ABORT, 'job attempts are append-only');
        END;
        CREATE TRIGGER job_attempts_no_delete BEFORE DELETE ON job_attempts
        BEGIN
            SELECT RAISE(ABORT, 'job attempts are append-only');
        END;
        """
    )


@MIGRATIONS()
def m013_refused_keys(db: Database) -> None:
    """Provider keys the provider refused (401/403), by a fingerprint, never the key itself.

    A restart with the same key keeps that provider out of ``provider: auto`` and
    ``--check`` names it; a different key clears the row.
    """
    db.execute(
        """
        CREATE TABLE refused_keys (
            provider TEXT PRIMARY KEY,
            key_fingerprint TEXT NOT NULL,  -- see paddock.refused_keys.fingerprint
            reason TEXT NOT NULL,
            at TEXT NOT NULL
        )
        """
    )


@MIGRATIONS()
def m014_extensions(db: Database) -> None:
    """Extend: a continuation job and the clip it continues.

    Written before the continuation is accepted (its job id chosen first), with the
    posted frame's link, so a restart never makes the frame or the job twice.
    ``source_url``: the posted video that is continued (a Discord attachment);
    ``parts``: how many clips the joined video holds.
    """
    db.execute(
        """
        CREATE TABLE extensions (
            job_id TEXT PRIMARY KEY,
            parent_job_id TEXT NOT NULL,
            source_url TEXT NOT NULL,
            frame_url TEXT NOT NULL,
            parts INTEGER NOT NULL CHECK (parts >= 2),
            created_at TEXT NOT NULL
        )
        """
    )


@MIGRATIONS()
def m015_leases(db: Database) -> None:
    """Leases: which process drives a job, until when; and callbacks kept for the owner.

    ``lease_owner`` is a process's random id (see `paddock.leases`), ``lease_until`` the
    Unix time its lease ends unless renewed; both NULL for a job nobody drives. A row of
    ``job_wakes`` is a provider callback that arrived at a process that does not drive the
    task: the owner takes it at its next heartbeat and polls at once.
    """
    db.execute("ALTER TABLE jobs ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION")
    db.execute("CREATE INDEX jobs_lease_owner ON jobs (lease_owner)")
    db.execute(
        """
        CREATE TABLE job_wakes (
            task_id TEXT PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL
        )
        """
    )


@MIGRATIONS()
def m016_provider_turns(db: Database) -> None:
    """The fair line of each provider, kept in the database for every process.

    ``slot_asker`` is the lease owner of a job that asked for a slot at its provider and
    was told to wait (NULL once sent); ``slot_member_cap`` is the cap on its member's jobs
    at once it asked with (NULL: no cap). A row of ``server_turns`` and ``member_turns``
    is when a server, and a member of it, last had a slot at a provider: a number that
    grows with every slot given there (see `paddock.fair_slots`).
    """
    db.execute("ALTER TABLE jobs ADD COLUMN slot_asker TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN slot_member_cap INTEGER")
    db.execute("CREATE INDEX jobs_slot_askers ON jobs (provider) WHERE slot_asker IS NOT NULL")
    db.execute(
        """
        CREATE TABLE server_turns (
            provider TEXT NOT NULL,
            guild_id INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            PRIMARY KEY (provider, guild_id)
        )
        """
    )
    db.execute("CREATE INDEX server_turns_last ON server_turns (provider, turn)")
    db.execute(
        """
        CREATE TABLE member_turns (
            provider TEXT NOT NULL,
            guild_id INTEGER NOT NULL,
            user_id INTEGER NOT NULL,
            turn INTEGER NOT NULL,
            PRIMARY KEY (provider, guild_id, user_id)
        )
        """
    )
