package routerlib

import "github.com/pgreplication/terraform-provider-pgreplication/internal/sqllex"

// What the classifier knows about PostgreSQL's functions. A statement that
// calls a primary-only function goes to the primary. Every volatile function
// in pg_catalog, on every supported major version, is either primary-only or
// listed in readSafeFunctions with the reason it may run on a replica:
// TestVolatileFunctionsClassified reads pg_proc and fails when a new
// PostgreSQL release adds one that is in neither, so a new admin function
// cannot silently reach a replica. Stable and immutable functions change
// nothing by definition, and run anywhere, except the few below that fail
// during recovery.
//
// The rule for primary-only: the function changes server state (slots, WAL,
// configuration, statistics, other backends, catalogs, large objects,
// sequences), changes or reads the state of the session it runs in
// (settings, advisory locks, the random seed, currval), cannot run during
// recovery, or is not callable from SQL (the primary reports that as well
// as any node). A function that only acts on a standby (pg_wal_replay_pause,
// pg_promote) is primary-only too: a pooled replica connection would act on
// an arbitrary standby, so such calls belong on a connection to the standby
// itself, and on the primary they fail with a clear error.

// primaryFunctions are the primary-only functions named in full, as pg_proc
// spells them (unquoted calls are folded to lower case before the lookup).
var primaryFunctions = map[string]struct{}{
	// Sequences and the session's view of them.
	"nextval": {}, "setval": {}, "currval": {}, "lastval": {},
	// Transaction IDs and WAL positions that exist only on the primary.
	"txid_current": {}, "pg_current_xact_id": {},
	"pg_current_wal_lsn": {}, "pg_current_wal_insert_lsn": {}, "pg_current_wal_flush_lsn": {},
	"pg_switch_wal": {}, "pg_create_restore_point": {}, "pg_log_standby_snapshot": {},
	"pg_logical_emit_message": {}, "pg_notify": {},
	// Backups, snapshots and the session's statistics snapshot.
	"pg_backup_start": {}, "pg_backup_stop": {}, "pg_export_snapshot": {},
	"pg_stat_clear_snapshot": {}, "pg_stat_force_next_flush": {},
	// Settings, the random seed, configuration and logs.
	"set_config": {}, "setseed": {}, "pg_reload_conf": {},
	"pg_rotate_logfile": {}, "pg_rotate_logfile_old": {},
	// Other backends.
	"pg_cancel_backend": {}, "pg_terminate_backend": {}, "pg_log_backend_memory_contexts": {},
	// Replication slots: created, dropped, advanced or consumed.
	"pg_create_physical_replication_slot": {}, "pg_create_logical_replication_slot": {},
	"pg_copy_physical_replication_slot": {}, "pg_copy_logical_replication_slot": {},
	"pg_drop_replication_slot": {}, "pg_replication_slot_advance": {}, "pg_sync_replication_slots": {},
	"pg_logical_slot_get_changes": {}, "pg_logical_slot_get_binary_changes": {},
	"pg_logical_slot_peek_changes": {}, "pg_logical_slot_peek_binary_changes": {},
	// Recovery control: only meaningful on one chosen standby.
	"pg_wal_replay_pause": {}, "pg_wal_replay_resume": {}, "pg_promote": {},
	// Indexes and catalogs.
	"brin_summarize_new_values": {}, "brin_summarize_range": {}, "brin_desummarize_range": {},
	"gin_clean_pending_list": {}, "pg_import_system_collations": {}, "pg_extension_config_dump": {},
	"pg_nextoid": {}, "pg_stop_making_pinned_objects": {},
	// Planner statistics written into the catalogs (PostgreSQL 18).
	"pg_restore_relation_stats": {}, "pg_restore_attribute_stats": {},
	"pg_clear_relation_stats": {}, "pg_clear_attribute_stats": {},
	// Large objects (the lo_ prefix below covers the rest).
	"loread": {}, "lowrite": {},
	// Cursors declared in the session, and SQL passed as text: the
	// classifier cannot see what that SQL does.
	"cursor_to_xml": {}, "cursor_to_xmlschema": {},
	"query_to_xml": {}, "query_to_xmlschema": {}, "query_to_xml_and_xmlschema": {},
	"ts_stat": {}, "ts_rewrite": {},
	// Not callable from SQL (triggers, handlers, validators).
	"suppress_redundant_updates_trigger": {}, "tsvector_update_trigger": {},
	"tsvector_update_trigger_column": {}, "unique_key_recheck": {},
	"plpgsql_call_handler": {}, "plpgsql_inline_handler": {}, "plpgsql_validator": {},
	"brinhandler": {}, "bthandler": {}, "ginhandler": {}, "gisthandler": {}, "hashhandler": {},
	"spghandler": {}, "heap_tableam_handler": {},
	"dsnowball_init": {}, "dsnowball_lexize": {},
	// Extensions seen in the wild (not in pg_catalog, so by name only).
	// dblink: dblink(), dblink_exec() and the dblink_ prefix below act on
	// another server or keep named connections in the session, which a
	// pooled replica session must not hold.
	"dblink": {}, "pg_stat_statements_reset": {},
}

// primaryPrefixes are families of primary-only functions, so that a new
// member of one in a later release goes to the primary too.
var primaryPrefixes = []string{
	"pg_advisory_", "pg_try_advisory_", // session and transaction locks
	"pg_stat_reset",          // pg_stat_reset, pg_stat_reset_shared, …
	"pg_replication_origin_", // create, drop, advance, session setup
	"lo_",                    // large objects
	"binary_upgrade_",        // pg_upgrade's internals
	"RI_FKey_",               // foreign-key triggers
	"dblink_",                // the dblink extension: connect, open, send_query, exec… (see above)
}

// readSafeFunctions are the volatile functions in pg_catalog that may run on
// a replica, each with the reason. Keep it reviewed: a function belongs here
// only if it changes nothing on the server or in the session and works
// during recovery.
var readSafeFunctions = map[string]string{
	"random":                                  "a new value each call; no state but the session's seed, which setseed (primary) sets",
	"random_normal":                           "like random",
	"array_shuffle":                           "like random",
	"array_sample":                            "like random",
	"uuidv4":                                  "like random",
	"uuidv7":                                  "like random, ordered by the clock",
	"gen_random_uuid":                         "like random",
	"clock_timestamp":                         "reads the clock",
	"timeofday":                               "reads the clock",
	"pg_sleep":                                "waits; changes nothing",
	"pg_sleep_for":                            "waits; changes nothing",
	"pg_sleep_until":                          "waits; changes nothing",
	"current_query":                           "reports the statement running",
	"currtid2":                                "reads a tuple's latest version",
	"amvalidate":                              "checks an operator class; reads catalogs",
	"pg_is_in_recovery":                       "reports the node's role: what a replica is asked",
	"pg_is_wal_replay_paused":                 "reports recovery state",
	"pg_get_wal_replay_pause_state":           "reports recovery state",
	"pg_last_wal_receive_lsn":                 "reports recovery progress",
	"pg_last_wal_replay_lsn":                  "reports recovery progress",
	"pg_last_xact_replay_timestamp":           "reports recovery progress",
	"pg_last_committed_xact":                  "reports commit timestamps",
	"pg_xact_commit_timestamp":                "reports commit timestamps",
	"pg_xact_commit_timestamp_origin":         "reports commit timestamps",
	"pg_xact_status":                          "reports a transaction's status",
	"txid_status":                             "reports a transaction's status",
	"pg_control_checkpoint":                   "reads pg_control",
	"pg_control_init":                         "reads pg_control",
	"pg_control_recovery":                     "reads pg_control",
	"pg_control_system":                       "reads pg_control",
	"pg_collation_actual_version":             "reads the collation library",
	"pg_database_collation_actual_version":    "reads the collation library",
	"pg_database_size":                        "measures files",
	"pg_tablespace_size":                      "measures files",
	"pg_relation_size":                        "measures files",
	"pg_table_size":                           "measures files",
	"pg_indexes_size":                         "measures files",
	"pg_total_relation_size":                  "measures files",
	"pg_partition_tree":                       "reads catalogs",
	"pg_partition_ancestors":                  "reads catalogs",
	"pg_get_sequence_data":                    "reads a sequence without advancing it",
	"pg_sequence_last_value":                  "reads a sequence without advancing it",
	"pg_prepared_xact":                        "lists prepared transactions",
	"pg_lock_status":                          "lists the node's locks",
	"pg_blocking_pids":                        "lists the node's lock waits",
	"pg_safe_snapshot_blocking_pids":          "lists the node's lock waits",
	"pg_isolation_test_session_is_blocked":    "lists the node's lock waits",
	"pg_notification_queue_usage":             "reports the notification queue",
	"pg_get_backend_memory_contexts":          "reports this backend's memory",
	"pg_get_shmem_allocations_numa":           "reports shared memory",
	"pg_get_aios":                             "reports asynchronous I/O in progress",
	"pg_get_loaded_modules":                   "lists loaded libraries",
	"pg_stat_get_backend_io":                  "reads statistics",
	"pg_stat_get_backend_wal":                 "reads statistics",
	"pg_ls_summariesdir":                      "lists a directory",
	"pg_get_shmem_allocations":                "reports shared memory",
	"pg_get_multixact_members":                "reports a multixact",
	"pg_get_wait_events":                      "lists wait events",
	"pg_get_wal_resource_managers":            "lists WAL resource managers",
	"pg_get_wal_summarizer_state":             "reports WAL summarization",
	"pg_available_wal_summaries":              "reports WAL summarization",
	"pg_wal_summary_contents":                 "reports WAL summarization",
	"pg_jit_available":                        "reports a setting",
	"pg_show_all_file_settings":               "reads the configuration files",
	"pg_hba_file_rules":                       "reads the configuration files",
	"pg_ident_file_mappings":                  "reads the configuration files",
	"pg_show_replication_origin_status":       "lists replication origins",
	"pg_current_logfile":                      "reports the log file's name",
	"pg_stat_file":                            "reads a file's metadata",
	"pg_read_file":                            "reads a file",
	"pg_read_file_old":                        "reads a file",
	"pg_read_binary_file":                     "reads a file",
	"pg_ls_dir":                               "lists a directory",
	"pg_ls_logdir":                            "lists a directory",
	"pg_ls_waldir":                            "lists a directory",
	"pg_ls_tmpdir":                            "lists a directory",
	"pg_ls_archive_statusdir":                 "lists a directory",
	"pg_ls_logicalmapdir":                     "lists a directory",
	"pg_ls_logicalsnapdir":                    "lists a directory",
	"pg_ls_replslotdir":                       "lists a directory",
	"pg_stat_have_stats":                      "reads statistics",
	"pg_stat_get_io":                          "reads statistics",
	"pg_stat_get_recovery_prefetch":           "reads statistics",
	"pg_stat_get_xact_blocks_fetched":         "reads statistics",
	"pg_stat_get_xact_blocks_hit":             "reads statistics",
	"pg_stat_get_xact_function_calls":         "reads statistics",
	"pg_stat_get_xact_function_self_time":     "reads statistics",
	"pg_stat_get_xact_function_total_time":    "reads statistics",
	"pg_stat_get_xact_numscans":               "reads statistics",
	"pg_stat_get_xact_tuples_deleted":         "reads statistics",
	"pg_stat_get_xact_tuples_fetched":         "reads statistics",
	"pg_stat_get_xact_tuples_hot_updated":     "reads statistics",
	"pg_stat_get_xact_tuples_inserted":        "reads statistics",
	"pg_stat_get_xact_tuples_newpage_updated": "reads statistics",
	"pg_stat_get_xact_tuples_returned":        "reads statistics",
	"pg_stat_get_xact_tuples_updated":         "reads statistics",
	"bernoulli":                               "the TABLESAMPLE BERNOULLI method's handler, which the clause names like a call: sampling only reads (and the handler is not callable from SQL anywhere)",
	"system":                                  "the TABLESAMPLE SYSTEM method's handler, like bernoulli",
}

// primaryFunction reports whether a call of the function named by t (an
// unquoted word, or a quoted identifier) must run on the primary. It does
// not allocate.
func primaryFunction(t sqllex.Token) bool {
	var buf [64]byte
	var name []byte
	switch {
	case t.Kind == sqllex.Word:
		// PostgreSQL folds an unquoted name to lower case.
		if len(t.Text) > len(buf) {
			return false // longer than any name above
		}
		name = buf[:len(t.Text)]
		for i := 0; i < len(t.Text); i++ {
			c := t.Text[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name[i] = c
		}
	case t.Kind == sqllex.Quoted && t.Text[0] == '"':
		q := t.Text
		if len(q) < 2 || q[len(q)-1] != '"' {
			return true // unterminated: the primary reports it
		}
		if len(q)-2 > len(buf) {
			return false
		}
		name = append(buf[:0], q[1:len(q)-1]...) // a "" inside matches no name: fine
	default:
		return true // U&"…": its escapes could spell any name
	}
	// string(name) in a map index or a comparison does not allocate.
	if _, ok := primaryFunctions[string(name)]; ok {
		return true
	}
	for _, p := range primaryPrefixes {
		if len(name) >= len(p) && string(name[:len(p)]) == p {
			return true
		}
	}
	return false
}
