// The package's `tenant-pools/middy` subpath: the middy middleware and the HTTP helpers it comes
// with. Nothing here imports middy at run time (its types only), so the subpath loads from CommonJS
// and ESM alike; the handler that calls middy() brings @middy/core itself.
export { bodyLimit } from './body-limit'
export { httpErrors } from './http-errors'
export { jsonResponse } from './json-response'
export { invocationDeadline, type TenantContext, type TenantDbOptions, tenantDb } from './tenant-db'
export { type HttpAnswer, toHttp } from './to-http'
