// A request's log lines and metrics, kept apart from every other request's. With Lambda Managed
// Instances several invocations run at once in one thread: keys set on the module logger (its
// context, the tenant) would stamp one request's lines with another's id. So each request logs
// through a RequestLog, which adds its own keys to every line it writes through the module logger,
// and records its metrics in a RequestMetrics, which hands them to the module Metrics and publishes
// them in one synchronous step at its end: no other invocation can run in between.
//
// Neither builds a Powertools instance per request. A child Logger and a Metrics each read the
// environment and make a Console when built: most of what the middleware chain cost a warm request
// (npm run bench:handler).
import { type Logger, LogLevelThreshold } from '@aws-lambda-powertools/logger'
import { Metrics, type MetricUnit } from '@aws-lambda-powertools/metrics'
import type { MiddlewareObj, Request } from '@middy/core'
import type { Context } from 'aws-lambda'
import type { Log } from '../../lib'

type Keys = Record<string, unknown>

/**
 * The module logger's lines, with this request's keys on each. A line below the logger's level
 * (which log sampling may lower for an invocation) is dropped here: Powertools works a line out, the
 * X-Ray trace id read from the environment among it, before it checks the level. This logger buffers
 * nothing (no logBufferOptions), which would want those lines.
 */
export class RequestLog implements Log {
  readonly #logger: Logger
  readonly #keys: Keys

  constructor(logger: Logger, keys: Keys) {
    this.#logger = logger
    this.#keys = keys
  }

  /** Adds keys to every later line of this request. */
  appendKeys(keys: Keys): void {
    Object.assign(this.#keys, keys)
  }

  debug(message: string, ...extra: Keys[]): void {
    if (this.#logger.level <= LogLevelThreshold.DEBUG) this.#logger.debug(message, this.#keys, ...extra)
  }

  info(message: string, ...extra: Keys[]): void {
    if (this.#logger.level <= LogLevelThreshold.INFO) this.#logger.info(message, this.#keys, ...extra)
  }

  warn(message: string, ...extra: Keys[]): void {
    if (this.#logger.level <= LogLevelThreshold.WARN) this.#logger.warn(message, this.#keys, ...extra)
  }

  error(message: string, ...extra: Keys[]): void {
    if (this.#logger.level <= LogLevelThreshold.ERROR) this.#logger.error(message, this.#keys, ...extra)
  }
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit]

/**
 * The environment's Metrics, which says whether it publishes at all: not with
 * POWERTOOLS_METRICS_DISABLED (or POWERTOOLS_DEV) set, when a request records nothing.
 */
export class ModuleMetrics extends Metrics {
  get publishing(): boolean {
    return !this.isDisabled()
  }
}

/** This request's metrics, published together when it ends. */
export class RequestMetrics {
  readonly #recorded: Array<[name: string, unit: Unit, value: number]> = []
  /** False: the metrics are off, and what is added is dropped (a caller may skip working it out). */
  readonly recording: boolean

  constructor(recording = true) {
    this.recording = recording
  }

  addMetric(name: string, unit: Unit, value: number): void {
    if (this.recording) this.#recorded.push([name, unit, value])
  }

  /**
   * Publishes what this request recorded as one EMF line, with the function's name as dimension.
   * Nothing recorded (an admin call refused before its handler): nothing published, where
   * Powertools would print a plain-text warning on every such request.
   */
  publishTo(metrics: Metrics, functionName: string): void {
    if (this.#recorded.length === 0) return
    // Synchronous from the first call to the publication, which clears the module instance's
    // metrics and dimensions again; so does a failure on the way, or the next request would
    // publish this one's.
    try {
      metrics.addDimension('function_name', functionName)
      for (const [name, unit, value] of this.#recorded) metrics.addMetric(name, unit, value)
      metrics.publishStoredMetrics()
    } catch (err) {
      metrics.clearMetrics()
      metrics.clearDimensions()
      throw err
    }
  }
}

export interface TelemetryContext extends Context {
  /** This request's logger: the module logger, with this invocation's id and keys on each line. */
  logger: RequestLog
  /** This request's metrics, published when it ends. */
  metrics: RequestMetrics
}

// The first request of an environment records the cold start.
let coldStart = true

export function requestTelemetry(logger: Logger, metrics: ModuleMetrics): MiddlewareObj {
  const telemetryBefore = (request: Request) => {
    const context = request.context as TelemetryContext
    const cold = coldStart
    coldStart = false
    context.logger = new RequestLog(logger, {
      function_name: context.functionName,
      function_request_id: context.awsRequestId,
      cold_start: cold,
    })
    context.metrics = new RequestMetrics(metrics.publishing)
    // Published at once, on a line of its own.
    if (cold) metrics.captureColdStartMetric(context.functionName)
  }
  const telemetryAfter = (request: Request) => {
    const context = request.context as Partial<TelemetryContext>
    context.metrics?.publishTo(metrics, context.functionName ?? '')
  }
  return { before: telemetryBefore, after: telemetryAfter, onError: telemetryAfter }
}

/** The request's logger (the module logger before the middleware ran). */
export const loggerOf =
  (fallback: Log) =>
  (request: Request): Log =>
    (request.context as Partial<TelemetryContext>).logger ?? fallback

/** Forgets that the environment has served a request, for tests. */
export const resetColdStart = (): void => {
  coldStart = true
}
