// Where each tenant lives: its cluster, and the cluster a move is copying it to. Tenants created
// before clusters existed live on the main one, whatever its configured name: 'main' is the default.
export default `
ALTER TABLE tenants
  ADD COLUMN cluster   text NOT NULL DEFAULT 'main' CHECK (cluster ~ '^[a-z][a-z0-9_-]{0,31}$'),
  ADD COLUMN moving_to text CHECK (moving_to ~ '^[a-z][a-z0-9_-]{0,31}$');
CREATE INDEX tenants_cluster ON tenants (cluster) WHERE status = 'active';
`
