// The package's `tenant-pools/middy` subpath: the middy middleware and the HTTP helpers it comes
// with. Nothing here imports middy at run time (its types only), so the subpath loads from CommonJS
// and ESM alike; the handler that calls middy() brings @middy/core itself.
export { bodyLimit } from './http/body-limit'
export { httpErrors } from './http/http-errors'
export { jsonResponse } from './http/json-response'
export { invocationDeadline, type TenantContext, type TenantDbOptions, tenantDb } from './http/tenant-db'
export { type HttpAnswer, toHttp } from './http/to-http'
