import { describeJobPlugin } from '@coremachine/test-kit';
import helloWorld from '../src/index.ts';

describeJobPlugin(helloWorld, {
  packageName: '@coremachine/job-hello-world',
  sample: { params: { n: 3, message: 'conformance' } },
  invalid: [
    { name: 'n out of range', params: { n: 0 }, field: 'params.n' },
    { name: 'n not a number', params: { n: 'many' }, field: 'params.n' },
    { name: 'an unknown key', params: { n: 2, colour: 'red' }, field: 'params.colour' },
    { name: 'failure_rate above 1', params: { failure_rate: 2 }, field: 'params.failure_rate' },
  ],
});
