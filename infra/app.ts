import { App } from 'aws-cdk-lib';
import { appSettingsFromContext } from './context.js';
import { addPolicyChecks } from './policy-checks.js';
import { ConntrackResponderStack } from './stack.js';

// The app `npx cdk synth|deploy` runs (see cdk.json). Settings come from context; see context.ts.
const app = new App();
const settings = appSettingsFromContext((key) => app.node.tryGetContext(key));
new ConntrackResponderStack(app, settings.stackName, {
  description: 'conntrack-responder: detects a full conntrack table from kernel logs and responds',
  responder: settings.responder,
});
addPolicyChecks(app);
app.synth();
