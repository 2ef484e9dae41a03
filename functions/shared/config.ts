// Every environment variable the functions read, validated in one place. A malformed value fails
// the function's init with a ConfigError naming the variable, instead of silently turning a limit
// off (`bytes > NaN` is false). The registry's own variables (TENANT_POOLS_*) are read and checked by
// lib's optionsFromEnv, through the same call.
import {
  defaults,
  InvalidOptionsError,
  optionsFromEnv,
  prewarmFromEnv,
  type TenantPoolsOptions,
} from '../../lib'
import * as z from '../../lib/zod'

const count = (min: number) =>
  z.pipe(z.string(), z.transform(Number)).check(z.refine((n) => Number.isInteger(n) && n >= min))
const text = z.string().check(z.minLength(1))
const flag = z.enum(['true', 'false'])

/** Each variable: its schema and its default (undefined: not set means absent). */
const variables = {
  BODY_LIMIT_BYTES: [count(1), String(64 * 1024)],
  TENANT_CATALOG_TTL_MS: [count(0), '30000'],
  POWERTOOLS_SERVICE_NAME: [text, defaults.applicationNamePrefix],
  POWERTOOLS_METRICS_NAMESPACE: [text, 'TenantPools'],
  ADMIN_API_KEY_SECRET_ID: [text, undefined],
  ADMIN_API_KEY: [text, undefined],
  TENANT_POOLS_SECRET_ID: [text, undefined],
  TENANT_POOLS_TENANT_SECRET_PATTERN: [z.string().check(z.includes('{tenantId}')), undefined],
  TENANT_POOLS_TENANT_SECRET_FALLBACK: [flag, 'false'],
  TENANT_POOLS_SCHEMA_PREFIX: [text, defaults.schemaPrefix],
  TENANT_POOLS_APP_NAME_PREFIX: [text, defaults.applicationNamePrefix],
  TENANT_POOLS_TRUST_TENANT_HEADER: [flag, undefined],
  TENANT_POOLS_STAGE: [text, undefined],
  TENANT_POOLS_TRAFFIC_ROLE: [text, undefined],
  MAINTENANCE_CONCURRENCY: [count(1), '4'],
  MAINTENANCE_STATEMENT_TIMEOUT_MS: [count(0), '600000'],
  MAINTENANCE_SAFETY_MARGIN_MS: [count(0), '60000'],
  MAINTENANCE_RETENTION_DAYS: [count(0), '30'],
  MAINTENANCE_PASSES_KEPT: [count(1), '10'],
  MAINTENANCE_REAP_IDLE_MS: [count(0), '600000'],
} as const

type Variables = typeof variables
type Value<K extends keyof Variables> = Variables[K][1] extends string
  ? z.output<Variables[K][0]>
  : z.output<Variables[K][0]> | undefined

export type FunctionsConfig = { [K in keyof Variables]: Value<K> } & {
  /** The registry's options from TENANT_POOLS_* (lib's optionsFromEnv). */
  pools: TenantPoolsOptions
  /** TENANT_POOLS_PREWARM and its bound (lib's prewarmFromEnv); undefined when off. */
  prewarm: { timeoutMs: number } | undefined
}

/** A variable that is set but malformed. */
export class ConfigError extends InvalidOptionsError {}

/** Reads and checks every variable of `env`. Throws ConfigError naming the first bad one. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): FunctionsConfig {
  const out: Record<string, unknown> = {}
  for (const [name, [schema, fallback]] of Object.entries(variables)) {
    const given = env[name]
    const raw = given === undefined || given === '' ? fallback : given
    if (raw === undefined) continue
    const parsed = (schema as z.ZodMiniType).safeParse(raw)
    if (!parsed.success) throw new ConfigError(`Invalid environment variable ${name}: ${describe(name)}`)
    out[name] = parsed.data
  }
  let pools: TenantPoolsOptions
  let prewarm: { timeoutMs: number } | undefined
  try {
    pools = optionsFromEnv(env)
    prewarm = prewarmFromEnv(env)
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err })
  }
  return { ...(out as { [K in keyof Variables]: Value<K> }), pools, prewarm }
}

// What a variable must hold, without echoing its value (it may be a secret).
const describe = (name: string): string => {
  const [schema] = variables[name as keyof Variables]
  if (schema === flag) return 'must be true or false'
  if (name === 'TENANT_POOLS_TENANT_SECRET_PATTERN') return 'must contain {tenantId}'
  if (schema === text) return 'must not be empty'
  return 'must be a whole number in range'
}

let current: FunctionsConfig | undefined

/** The environment's configuration, read once. */
export function config(): FunctionsConfig {
  current ??= readConfig()
  return current
}

/** Forgets the configuration read, for tests that change the environment. */
export function resetConfig(): void {
  current = undefined
}
