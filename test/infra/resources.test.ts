import { Capture, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DETECT_ENVIRONMENT } from '../../functions/core/incident/settings.js';
import { onlyStateMachine } from '../../functions/local/twin/template.js';
import { DETECT_FILTER_PATTERN_TEXT } from '../../infra/constructs/detection.js';
import { logicalIdOf, synthesize } from './support.js';

describe('ConntrackResponder with its defaults', () => {
  const { template } = synthesize();

  it('creates the kernel log group and subscribes the detect function to it with the detection pattern', () => {
    // Prepare
    const functionId = logicalIdOf(template, 'AWS::Lambda::Function', 'Detection/Function/Resource');
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'Detection/KernelLogs/Resource');
    // Assess
    // A generated name, so that the group kept on delete never blocks the next deployment.
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { LogGroupName: Match.absent(), RetentionInDays: 90 },
      DeletionPolicy: 'Retain',
    });
    expect(template.toJSON().Resources[logGroupId].Properties.LogGroupName).toBeUndefined();
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', 1);
    template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      LogGroupName: { Ref: logGroupId },
      FilterPattern: DETECT_FILTER_PATTERN_TEXT,
      FilterName: 'conntrack-responder',
      DestinationArn: { 'Fn::GetAtt': [functionId, 'Arn'] },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'logs.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [functionId, 'Arn'] },
      SourceArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    });
  });

  it('runs detect on Node.js 24, arm64, traced, with its settings in the environment', () => {
    // Prepare
    const tableId = logicalIdOf(template, 'AWS::DynamoDB::Table', 'IncidentStore/Table/Resource');
    const stateMachineId = logicalIdOf(
      template,
      'AWS::StepFunctions::StateMachine',
      'Workflow/StateMachine/Resource',
    );
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'Detection/FunctionLogs/Resource');
    // Assess
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 256,
      Timeout: 30,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: { LogGroup: { Ref: logGroupId } },
      Environment: {
        Variables: {
          [DETECT_ENVIRONMENT.incidentTableName]: { Ref: tableId },
          [DETECT_ENVIRONMENT.stateMachineArn]: { Ref: stateMachineId },
          [DETECT_ENVIRONMENT.instanceIdPattern]: 'i-[0-9a-f]{8,17}',
          [DETECT_ENVIRONMENT.cooldownMinutes]: '30',
          [DETECT_ENVIRONMENT.defaultMode]: 'approve',
          [DETECT_ENVIRONMENT.incidentRetentionDays]: '90',
        },
      },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 90,
      LogGroupName: Match.absent(),
    });
  });

  it('keeps events detect fails on in an encrypted, TLS-only queue, and raises an alarm to the topic', () => {
    // Prepare
    const queueId = logicalIdOf(template, 'AWS::SQS::Queue', 'Detection/FailedEvents/Resource');
    const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications/Topic/Resource');
    // Assess
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 6 * 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sqs:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
    });
  });

  it('alarms to the topic when a delivery carries drop text that did not count as kernel drops', () => {
    const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications/Topic/Resource');
    // The metrics the detect function publishes (functions/handlers/detect.ts), summed.
    const metric = (id: string, metricName: string) =>
      Match.objectLike({
        Id: id,
        MetricStat: Match.objectLike({
          Metric: {
            Namespace: 'ConntrackResponder',
            MetricName: metricName,
            Dimensions: [{ Name: 'service', Value: 'conntrack-responder' }],
          },
          Stat: 'Sum',
          Period: 300,
        }),
        ReturnData: false,
      });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('did not count as kernel drops'),
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'FILL(notKernel, 0) + FILL(unreadable, 0)', ReturnData: true }),
        metric('notKernel', 'LinesNotKernel'),
        metric('unreadable', 'LinesUnreadable'),
      ]),
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: topicId }],
    });
  });

  it('stores incidents in an on-demand table with point-in-time recovery and a TTL, kept on stack deletion', () => {
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        SSESpecification: { SSEEnabled: true },
      },
    });
  });

  it('keeps evidence versioned, encrypted, private, TLS-only, access-logged and expiring', () => {
    // Prepare
    const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', 'Evidence/Bucket/Resource');
    const accessLogsId = logicalIdOf(template, 'AWS::S3::Bucket', 'Evidence/AccessLogs/Resource');
    const rules = new Capture();
    // Assess
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        VersioningConfiguration: { Status: 'Enabled' },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LoggingConfiguration: { DestinationBucketName: { Ref: accessLogsId }, LogFilePrefix: 'evidence/' },
        LifecycleConfiguration: { Rules: rules },
        ObjectLockEnabled: Match.absent(),
      }),
    });
    expect(rules.asArray()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Id: 'expire-evidence', ExpirationInDays: 365, Status: 'Enabled' }),
        expect.objectContaining({
          Id: 'expire-noncurrent-evidence',
          NoncurrentVersionExpiration: { NoncurrentDays: 365 },
        }),
        expect.objectContaining({
          Id: 'abort-incomplete-uploads',
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        }),
      ]),
    );
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('publishes notifications on a topic encrypted with a rotating key that alarms may use', () => {
    // Prepare
    const keyId = logicalIdOf(template, 'AWS::KMS::Key', 'Notifications/Key/Resource');
    const topicId = logicalIdOf(template, 'AWS::SNS::Topic', 'Notifications/Topic/Resource');
    // Assess
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] } });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('runs the incident workflow as a Standard state machine, logging everything and traced', () => {
    // Prepare
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup', 'Workflow/Logs/Resource');
    const definition = new Capture();
    // Assess
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: true,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [logGroupId, 'Arn'] } } }],
      },
      DefinitionString: definition,
    });
    expect(definition.asObject()).toHaveProperty(['Fn::Join']);
    // The states themselves are tested in incident-workflow-definition.test.ts.
    const asl = onlyStateMachine(template.toJSON()).definition as Record<string, unknown>;
    expect(asl.StartAt).toBe('Take the incident');
    expect(asl.TimeoutSeconds).toBe(4 * 3600);
    expect(asl.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
  });

  it('outputs what an operator needs after deploying', () => {
    const outputs = template.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual([
      'ApprovalUrl',
      'ApproverPolicyArn',
      'DocumentNamePrefix',
      'EvidenceBucketName',
      'FailedEventsQueueUrl',
      'IncidentTableName',
      'KernelLogGroups',
      'NotificationTopicArn',
      'StateMachineArn',
    ]);
  });
});

describe('ConntrackResponder props', () => {
  it('subscribes each given log group, with construct ids and filter names that depend only on the name', () => {
    // Prepare
    const names = ['/var/log/messages', '/var/log/kern.log', '/a-b', '/a_b'];
    // Act
    const { template } = synthesize({ logGroupNames: names, subscriptionFilterName: 'ctr' });
    const { template: reordered } = synthesize({
      logGroupNames: [...names].reverse(),
      subscriptionFilterName: 'ctr',
    });
    // Assess
    // No kernel log group of its own: only the functions' and the workflow's.
    expect(
      Object.values(template.findResources('AWS::Logs::LogGroup')).filter((group) =>
        String(group.Metadata?.['aws:cdk:path']).includes('/KernelLogs/'),
      ),
    ).toEqual([]);
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', names.length);
    expect(
      Object.keys(
        template.findResources('AWS::Lambda::Permission', {
          Properties: { Principal: 'logs.amazonaws.com' },
        }),
      ),
    ).toHaveLength(names.length);
    for (const name of names) {
      template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
        LogGroupName: name,
        FilterName: 'ctr',
        FilterPattern: DETECT_FILTER_PATTERN_TEXT,
      });
    }
    const filterIds = (t: typeof template) =>
      Object.keys(t.findResources('AWS::Logs::SubscriptionFilter')).sort();
    expect(filterIds(reordered)).toEqual(filterIds(template));
    const onlyFirst = synthesize({
      logGroupNames: ['/var/log/messages'],
      subscriptionFilterName: 'ctr',
    }).template;
    expect(filterIds(template)).toEqual(expect.arrayContaining(filterIds(onlyFirst)));
  });

  it('passes detection settings to the function', () => {
    const { template } = synthesize({
      instanceIdPattern: 'host-(i-[0-9a-f]+)',
      cooldownMinutes: 45,
      defaultMode: 'dry-run',
      incidentRetentionDays: 30,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          [DETECT_ENVIRONMENT.instanceIdPattern]: 'host-(i-[0-9a-f]+)',
          [DETECT_ENVIRONMENT.cooldownMinutes]: '45',
          [DETECT_ENVIRONMENT.defaultMode]: 'dry-run',
          [DETECT_ENVIRONMENT.incidentRetentionDays]: '30',
        }),
      },
    });
  });

  it('locks evidence for the retention period when Object Lock is on', () => {
    const { template } = synthesize({
      objectLock: true,
      evidenceRetentionDays: 400,
      objectLockMode: 'COMPLIANCE',
    });
    const accessLogsId = logicalIdOf(template, 'AWS::S3::Bucket', 'Evidence/AccessLogs/Resource');
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } },
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-evidence', ExpirationInDays: 400 })]),
      },
    });
    // The access-log bucket is not locked: Object Lock is for the evidence only.
    expect(template.toJSON().Resources[accessLogsId].Properties.ObjectLockEnabled).toBeUndefined();
  });

  it.each([
    [{ cooldownMinutes: 0 }, /cooldownMinutes must be a whole number from 1 to 1440, got 0/],
    [{ cooldownMinutes: 2.5 }, /cooldownMinutes must be a whole number/],
    [{ defaultMode: 'yolo' as 'auto' }, /defaultMode must be one of auto, approve, dry-run, got 'yolo'/],
    [
      { instanceIdPattern: 'i-[' },
      /instanceIdPattern: instance id pattern 'i-\[' is not a valid regular expression/,
    ],
    [{ instanceIdPattern: '.*' }, /matches the empty string/],
    [{ evidenceRetentionDays: 0 }, /evidenceRetentionDays must be a whole number/],
    [{ documentNamePrefix: 'AWS-' }, /starts with a prefix AWS reserves/],
    [{ documentNamePrefix: 'my prefix' }, /may only use letters, digits/],
    [{ logGroupNames: ['/ok', 'bad name'] }, /log group name 'bad name' is not valid/],
    [{ logGroupNames: ['/twice', '/twice'] }, /log group name '\/twice' is listed twice/],
    [{ subscriptionFilterName: 'a:b' }, /subscriptionFilterName 'a:b' must be 1 to 512 characters without/],
  ])('rejects %j at synth with a message naming the prop', (props, message) => {
    expect(() => synthesize(props)).toThrow(message);
  });
});
