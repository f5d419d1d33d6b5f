/**
 * `GET /admin/doctor`: `otto doctor`'s checks on the running server (its own store, mirrors,
 * degraded mode, spool and conflicts), as findings the web app shows. Admins only.
 */
import type { FastifyInstance } from 'fastify';
import type { OttoConfig } from '../../config.ts';
import { diagnoseRunning, type Finding } from '../../doctor/index.ts';
import { OttoError } from '../../domain/errors.ts';
import type { Services } from '../../services/index.ts';
import type { MirrorStatus } from '../../storage/changes/index.ts';
import type { ResilientStore } from '../../storage/degraded/index.ts';
import { errors } from '../schemas.ts';

const responseSchema = {
  type: 'object',
  required: ['findings'],
  properties: {
    findings: {
      type: 'array',
      items: {
        type: 'object',
        required: ['check', 'status', 'message'],
        properties: {
          check: { type: 'string', description: 'What was checked, e.g. connection, migrations, indexes, mirror, degraded mode, spool, conflicts.' },
          status: { type: 'string', enum: ['ok', 'warn', 'fail'] },
          message: { type: 'string' },
          fix: { type: 'string', description: 'One line saying what to do (warn and fail).' },
        },
      },
    },
  },
} as const;

/** Registers `GET /admin/doctor` (admins only; anyone else gets 403). */
export function registerAdminDoctorRoutes(
  app: FastifyInstance,
  ctx: { config: OttoConfig; services: Services; mirrors?: { status(): Promise<MirrorStatus[]> }; degraded?: ResilientStore },
): void {
  app.get('/admin/doctor', {
    schema: {
      tags: ['admin'],
      summary: "`otto doctor` on the running server: each check's status, with a one-line fix for problems",
      description: 'Configuration, connection, capabilities, migrations, indexes, mirror lag, degraded mode, spool backlog and open conflicts. Reads only. Admins only.',
      response: { 200: responseSchema, ...errors(401, 403) },
    },
    handler: async (request): Promise<{ findings: Finding[] }> => {
      if (!request.caller.admin) throw new OttoError('FORBIDDEN', 'only an admin may run the doctor');
      const mirrors = await ctx.mirrors?.status();
      const findings = await diagnoseRunning({ config: ctx.config, store: ctx.services.store, mirrors, degraded: ctx.degraded?.degradedStatus() });
      return { findings };
    },
  });
}
