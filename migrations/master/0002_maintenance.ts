// Maintenance passes and their per-tenant progress: the job's cursor, its lease, and its record of
// failures.
export default `
CREATE TABLE maintenance_passes (
  id           bigserial PRIMARY KEY,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz
);

CREATE TABLE maintenance_progress (
  pass_id      bigint NOT NULL REFERENCES maintenance_passes (id),
  tenant_id    text NOT NULL,
  status       text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  runner       text NOT NULL,
  lease_until  timestamptz NOT NULL,
  error_code   text,
  started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at  timestamptz,
  PRIMARY KEY (pass_id, tenant_id)
);
`
