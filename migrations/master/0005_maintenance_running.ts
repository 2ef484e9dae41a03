// The maintenance job's live leases by tenant. A claim checks, for each candidate, that no pass holds
// a live lease on it; the primary key (pass_id, tenant_id) cannot answer that by tenant, so the check
// read every progress row ever written, a pass's worth more every hour. Running rows are few: the
// tenants being worked on now, and those of a crashed run until their lease expires.
export default `
CREATE INDEX maintenance_progress_running ON maintenance_progress (tenant_id) WHERE status = 'running';
`
