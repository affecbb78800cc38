/**
 * The npm packages the library loads with every import, pinned here and only here. They are named
 * with full `npm:` specifiers rather than through `deno.json`'s import map so that a script in any
 * folder can import `mod.ts` with nothing to configure (Deno applies the importing project's
 * configuration, not ours). The figure renderers' packages load on demand, in
 * `plot/figure_render.ts`.
 */
export { Ajv, type ErrorObject, type ValidateFunction } from "npm:ajv@8.17.1";
export {
  interpolateRdBu,
  interpolateViridis,
  interpolateYlOrRd,
  schemeCategory10,
} from "npm:d3-scale-chromatic@3.1.0";
export { linearSumAssignment } from "npm:linear-sum-assignment@1.0.7";
