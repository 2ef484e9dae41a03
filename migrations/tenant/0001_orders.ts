// Orders and their lines, in each tenant's schema.
export default `
CREATE TABLE orders (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  reference    text UNIQUE,
  customer     text NOT NULL,
  status       text NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
  total_cents  bigint NOT NULL CHECK (total_cents >= 0),
  version      integer NOT NULL DEFAULT 1,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  deleted_at   timestamptz
);
CREATE INDEX orders_keyset ON orders (created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE order_lines (
  order_id    uuid NOT NULL REFERENCES orders (id),
  line_no     integer NOT NULL,
  sku         text NOT NULL,
  quantity    integer NOT NULL CHECK (quantity > 0),
  unit_cents  bigint NOT NULL CHECK (unit_cents >= 0),
  PRIMARY KEY (order_id, line_no)
);
`
