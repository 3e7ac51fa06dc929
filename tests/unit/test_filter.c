/* SPDX-License-Identifier: Apache-2.0 */
/* test_filter.c: the EventBridge pattern language behind FilterCriteria. A table of patterns,
 * documents and expected results drawn from the EventBridge and Lambda event-filtering
 * documentation (every operator, arrays, nesting, null vs missing, $or, ignore-case, Kinesis
 * and SQS record shapes), a table of invalid patterns with the error each must give, the
 * FilterCriteria wrapper (0..5 filters ORed, 6 rejected, bad item shapes), and robustness:
 * deep and huge documents, bytes that are not UTF-8. Patterns and documents in the tables are
 * written with ' for " to keep them readable; q() swaps them back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"

/* Returns a static copy of s with ' turned into ". */
static const char *q(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    assert_true(n < size);
    for (size_t i = 0; i <= n; i++) {
        buf[i] = s[i] == '\'' ? '"' : s[i];
    }
    return buf;
}

struct match_case {
    const char *pattern;
    const char *doc;
    bool match;
};

/* The sample event of the EventBridge content-filtering pages. */
#define EC2                                                                                     \
    "{'version':'0','id':'ddddd4-aaaa-7777-4444-345dd43cc333','detail-type':'EC2 Instance "     \
    "State-change Notification','source':'aws.ec2','account':'012345679012','time':'2017-10-"   \
    "02T16:24:49Z','region':'us-east-1','resources':['arn:aws:ec2:us-east-1:123456789012:"      \
    "instance/i-000000aaaaaa00000'],'detail':{'c-count':5,'d-count':3,'x-limit':301.8,'source-" \
    "ip':'10.0.0.33','instance-id':'i-000000aaaaaa00000','state':'running'}}"

/* The null/empty-string sample event. */
#define ASG                                                                                     \
    "{'version':'0','detail-type':'EC2 Instance Launch Successful','source':'aws.autoscaling'," \
    "'resources':[],'detail':{'eventVersion':'','responseElements':null}}"

/* A Kinesis record as Lambda filters it (data already decoded and parsed). */
#define KIN(data) \
    "{'kinesisSchemaVersion':'1.0','partitionKey':'1','sequenceNumber':'4959','data':" data "}"
/* An SQS message as Lambda filters it. */
#define SQS(body)                                                                                  \
    "{'messageId':'059f36b4','receiptHandle':'AQEB','attributes':{'ApproximateReceiveCount':'1'}," \
    "'messageAttributes':{},'md5OfBody':'e4e6','eventSource':'aws:sqs','awsRegion':'us-east-2',"   \
    "'body':" body "}"
/* A DynamoDB stream record. */
#define DDB(name, img)                                                                          \
    "{'eventName':'" name "','eventSource':'aws:dynamodb','dynamodb':{'Keys':{'id':{'S':'1'}}," \
    "'NewImage':" img "}}"

static const struct match_case cases[] = {
    /* Simple matching, AND across fields, OR within a list. */
    {"{'source':['aws.ec2']}", EC2, true},
    {"{'source':['aws.s3']}", EC2, false},
    {"{'source':['aws.s3','aws.ec2']}", EC2, true},
    {"{'detail-type':['EC2 Instance State-change Notification']}", EC2, true},
    {"{'detail-type':['EC2 Instance State-change notification']}", EC2, false},
    {"{'source':['aws.ec2'],'region':['us-east-1']}", EC2, true},
    {"{'source':['aws.ec2'],'region':['us-west-2']}", EC2, false},
    {"{'detail':{'state':['initializing','running']}}", EC2, true},
    {"{'detail':{'state':['initializing','stopped']}}", EC2, false},
    {"{'detail':{'state':['running']},'source':['aws.ec2']}", EC2, true},
    {"{'detail':{'instance-id':['i-000000aaaaaa00000'],'state':['running']}}", EC2, true},
    {"{'detail':{'instance-id':['i-000000aaaaaa00000'],'state':['pending']}}", EC2, false},
    {"{'resources':['arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000']}", EC2,
     true},
    {"{'resources':['arn:aws:ec2:us-east-1:123456789012:instance/i-1']}", EC2, false},
    {"{'nosuchfield':['x']}", EC2, false},
    {"{'detail':{'nosuchfield':['x']}}", EC2, false},
    {"{'source':['AWS.EC2']}", EC2, false},
    {"{'source':['aws.ec2 ']}", EC2, false},
    {"{'state':['running']}", EC2, false},
    {"{'detail':{'state':{'inner':['running']}}}", EC2, false},
    /* Numbers, booleans and null as plain values. */
    {"{'detail':{'c-count':[5]}}", EC2, true},
    {"{'detail':{'c-count':[5.0]}}", EC2, true},
    {"{'detail':{'c-count':[5e0]}}", EC2, true},
    {"{'detail':{'c-count':[6]}}", EC2, false},
    {"{'detail':{'c-count':['5']}}", EC2, false},
    {"{'detail':{'x-limit':[301.8]}}", EC2, true},
    {"{'detail':{'x-limit':[3.018e2]}}", EC2, true},
    {"{'a':[300]}", "{'a':300.0}", true},
    {"{'a':[300]}", "{'a':3.0e2}", true},
    {"{'a':[300]}", "{'a':'300'}", false},
    {"{'a':['300']}", "{'a':300}", false},
    {"{'a':[-1]}", "{'a':-1}", true},
    {"{'a':[0]}", "{'a':-0}", true},
    {"{'a':[true]}", "{'a':true}", true},
    {"{'a':[true]}", "{'a':false}", false},
    {"{'a':[true]}", "{'a':'true'}", false},
    {"{'a':['true']}", "{'a':true}", false},
    {"{'a':[false]}", "{'a':false}", true},
    {"{'a':[false]}", "{}", false},
    {"{'a':[123456789012]}", "{'a':123456789012}", true},
    /* Null and empty strings are different things, and neither is a missing field. */
    {"{'detail':{'eventVersion':['']}}", ASG, true},
    {"{'detail':{'responseElements':[null]}}", ASG, true},
    {"{'detail':{'responseElements':['']}}", ASG, false},
    {"{'detail':{'eventVersion':[null]}}", ASG, false},
    {"{'detail':{'missing':[null]}}", ASG, false},
    {"{'detail':{'missing':['']}}", ASG, false},
    {"{'a':[null]}", "{'a':'null'}", false},
    {"{'a':['null']}", "{'a':null}", false},
    {"{'a':[null,'x']}", "{'a':'x'}", true},
    /* Arrays in the document: any element. */
    {"{'a':['x']}", "{'a':['y','x']}", true},
    {"{'a':['x']}", "{'a':['y','z']}", false},
    {"{'a':['x','z']}", "{'a':['y','z']}", true},
    {"{'a':['x']}", "{'a':[]}", false},
    {"{'a':[3]}", "{'a':[1,2,3]}", true},
    {"{'a':['x']}", "{'a':[['y'],['x']]}", true},
    {"{'a':[null]}", "{'a':[1,null]}", true},
    {"{'resources':['r2']}", "{'resources':['r1','r2','r3']}", true},
    {"{'employees':{'firstName':['Anna']}}",
     "{'employees':[{'firstName':'John','lastName':'Doe'},{'firstName':'Anna','lastName':"
     "'Smith'},{'firstName':'Peter','lastName':'Jones'}]}",
     true},
    {"{'employees':{'firstName':['Anna'],'lastName':['Smith']}}",
     "{'employees':[{'firstName':'John','lastName':'Doe'},{'firstName':'Anna','lastName':"
     "'Smith'}]}",
     true},
    {"{'employees':{'firstName':['Anna'],'lastName':['Jones']}}",
     "{'employees':[{'firstName':'Anna','lastName':'Smith'},{'firstName':'Peter','lastName':"
     "'Jones'}]}",
     false},
    {"{'employees':{'firstName':['Peter']}}",
     "{'employees':[[{'firstName':'John'},{'firstName':'Anna'}],[{'firstName':'Peter'}]]}", true},
    {"{'a':{'b':['x']}}", "{'a':[1,{'b':'x'}]}", true},
    {"{'a':{'b':['x']}}", "{'a':'x'}", false},
    /* Prefix. */
    {"{'time':[{'prefix':'2017-10-02'}]}", EC2, true},
    {"{'time':[{'prefix':'2017-10-03'}]}", EC2, false},
    {"{'region':[{'prefix':'us-'}]}", EC2, true},
    {"{'region':[{'prefix':'eu-'}]}", EC2, false},
    {"{'region':[{'prefix':'US-'}]}", EC2, false},
    {"{'a':[{'prefix':''}]}", "{'a':'anything'}", true},
    {"{'a':[{'prefix':'abc'}]}", "{'a':'ab'}", false},
    {"{'a':[{'prefix':'abc'}]}", "{'a':'abc'}", true},
    {"{'a':[{'prefix':'1'}]}", "{'a':123}", false},
    {"{'a':[{'prefix':'x'}]}", "{'a':['ay','xb']}", true},
    /* Prefix ignoring case. */
    {"{'detail':{'service':[{'prefix':{'equals-ignore-case':'EventB'}}]}}",
     "{'detail':{'service':'eventbridge'}}", true},
    {"{'detail':{'service':[{'prefix':{'equals-ignore-case':'EventB'}}]}}",
     "{'detail':{'service':'EVENTBRIDGE'}}", true},
    {"{'detail':{'service':[{'prefix':{'equals-ignore-case':'EventB'}}]}}",
     "{'detail':{'service':'Event'}}", false},
    {"{'detail':{'service':[{'prefix':{'equals-ignore-case':'EventB'}}]}}",
     "{'detail':{'service':'sns'}}", false},
    /* Suffix. */
    {"{'FileName':[{'suffix':'.png'}]}", "{'FileName':'image.png'}", true},
    {"{'FileName':[{'suffix':'.png'}]}", "{'FileName':'image.PNG'}", false},
    {"{'FileName':[{'suffix':'.png'}]}", "{'FileName':'image.jpg'}", false},
    {"{'FileName':[{'suffix':'.png'}]}", "{'FileName':'png'}", false},
    {"{'source':[{'suffix':'ec2'}]}", EC2, true},
    {"{'a':[{'suffix':'3'}]}", "{'a':123}", false},
    {"{'FileName':[{'suffix':{'equals-ignore-case':'.png'}}]}", "{'FileName':'IMAGE.PNG'}", true},
    {"{'FileName':[{'suffix':{'equals-ignore-case':'.png'}}]}", "{'FileName':'image.pNg'}", true},
    {"{'FileName':[{'suffix':{'equals-ignore-case':'.png'}}]}", "{'FileName':'image.gif'}", false},
    {"{'service':[{'suffix':{'equals-ignore-case':'tbridge'}}]}", "{'service':'EvenTBRIDGE'}",
     true},
    /* Equals ignoring case. */
    {"{'Name':[{'equals-ignore-case':'alice'}]}", "{'Name':'Alice'}", true},
    {"{'Name':[{'equals-ignore-case':'alice'}]}", "{'Name':'ALICE'}", true},
    {"{'Name':[{'equals-ignore-case':'alice'}]}", "{'Name':'alicia'}", false},
    {"{'Name':[{'equals-ignore-case':'alice'}]}", "{'Name':'alice '}", false},
    {"{'source':[{'equals-ignore-case':'AWS.EC2'}]}", EC2, true},
    {"{'a':[{'equals-ignore-case':''}]}", "{'a':''}", true},
    {"{'a':[{'equals-ignore-case':'x'}]}", "{'a':['Y','X']}", true},
    {"{'a':[{'equals-ignore-case':'5'}]}", "{'a':5}", false},
    {"{'a':[{'equals-ignore-case':'\xc3\xa9t\xc3\xa9'}]}", "{'a':'\xc3\x89T\xc3\x89'}", true},
    {"{'a':[{'equals-ignore-case':'\xce\xb1\xce\xb2'}]}", "{'a':'\xce\x91\xce\x92'}", true},
    {"{'a':[{'equals-ignore-case':'\xd0\xbf\xd1\x80'}]}", "{'a':'\xd0\x9f\xd0\xa0'}", true},
    {"{'a':[{'prefix':{'equals-ignore-case':'\xc3\xbc'}}]}", "{'a':'\303\234ber'}", true},
    /* Anything-but: a value, a number, lists. */
    {"{'detail':{'state':[{'anything-but':'initializing'}]}}", EC2, true},
    {"{'detail':{'state':[{'anything-but':'running'}]}}", EC2, false},
    {"{'detail':{'state':[{'anything-but':'Running'}]}}", EC2, true},
    {"{'detail':{'x-limit':[{'anything-but':123}]}}", EC2, true},
    {"{'detail':{'c-count':[{'anything-but':5}]}}", EC2, false},
    {"{'detail':{'state':[{'anything-but':['stopped','overloaded']}]}}", EC2, true},
    {"{'detail':{'state':[{'anything-but':['stopped','running']}]}}", EC2, false},
    {"{'detail':{'x-limit':[{'anything-but':[100,200,300]}]}}", EC2, true},
    {"{'detail':{'x-limit':[{'anything-but':[100,301.8]}]}}", EC2, false},
    {"{'price':[{'anything-but':[100,500]}]}", "{'price':101}", true},
    {"{'price':[{'anything-but':[100,500]}]}", "{'price':100.1}", true},
    {"{'price':[{'anything-but':[100,500]}]}", "{'price':100.0}", false},
    {"{'a':[{'anything-but':'x'}]}", "{}", false},
    {"{'a':[{'anything-but':'x'}]}", "{'a':5}", true},
    {"{'a':[{'anything-but':'x'}]}", "{'a':null}", true},
    {"{'a':[{'anything-but':5}]}", "{'a':'5'}", true},
    {"{'a':[{'anything-but':'x'}]}", "{'a':['x','y']}", true},
    {"{'a':[{'anything-but':'x'}]}", "{'a':['x']}", false},
    {"{'a':[{'anything-but':'x'}]}", "{'a':[]}", false},
    /* Anything-but prefix, suffix, ignore-case, wildcard. */
    {"{'Region':[{'anything-but':{'prefix':'us-'}}]}", "{'Region':'eu-west-1'}", true},
    {"{'Region':[{'anything-but':{'prefix':'us-'}}]}", "{'Region':'us-east-1'}", false},
    {"{'detail':{'state':[{'anything-but':{'prefix':'init'}}]}}", EC2, true},
    {"{'detail':{'state':[{'anything-but':{'prefix':'run'}}]}}", EC2, false},
    {"{'a':[{'anything-but':{'prefix':'1'}}]}", "{'a':123}", true},
    {"{'FileName':[{'anything-but':{'suffix':'.png'}}]}", "{'FileName':'a.jpg'}", true},
    {"{'FileName':[{'anything-but':{'suffix':'.png'}}]}", "{'FileName':'a.png'}", false},
    {"{'FileName':[{'anything-but':{'suffix':'.png'}}]}", "{'FileName':'a.PNG'}", true},
    {"{'state':[{'anything-but':{'equals-ignore-case':'initializing'}}]}",
     "{'state':'INITIALIZING'}", false},
    {"{'state':[{'anything-but':{'equals-ignore-case':'initializing'}}]}", "{'state':'running'}",
     true},
    {"{'state':[{'anything-but':{'equals-ignore-case':['stopped','Overloaded']}}]}",
     "{'state':'OVERLOADED'}", false},
    {"{'state':[{'anything-but':{'equals-ignore-case':['stopped','Overloaded']}}]}",
     "{'state':'Running'}", true},
    {"{'FilePath':[{'anything-but':{'wildcard':'*/lib/*'}}]}", "{'FilePath':'/usr/lib/x.so'}",
     false},
    {"{'FilePath':[{'anything-but':{'wildcard':'*/lib/*'}}]}", "{'FilePath':'/usr/bin/x'}", true},
    {"{'FilePath':[{'anything-but':{'wildcard':['*/lib/*','*/bin/*']}}]}",
     "{'FilePath':'/usr/bin/x'}", false},
    {"{'FilePath':[{'anything-but':{'wildcard':['*/lib/*','*/bin/*']}}]}", "{'FilePath':'/etc/x'}",
     true},
    /* Numeric ranges, with their edges. */
    {"{'detail':{'c-count':[{'numeric':['>',0,'<=',5]}]}}", EC2, true},
    {"{'detail':{'c-count':[{'numeric':['>',0,'<',5]}]}}", EC2, false},
    {"{'detail':{'c-count':[{'numeric':['>=',5]}]}}", EC2, true},
    {"{'detail':{'c-count':[{'numeric':['>',5]}]}}", EC2, false},
    {"{'detail':{'d-count':[{'numeric':['<',10]}]}}", EC2, true},
    {"{'detail':{'d-count':[{'numeric':['<',3]}]}}", EC2, false},
    {"{'detail':{'d-count':[{'numeric':['<=',3]}]}}", EC2, true},
    {"{'detail':{'x-limit':[{'numeric':['=',3.018e2]}]}}", EC2, true},
    {"{'detail':{'x-limit':[{'numeric':['=',301.8]}]}}", EC2, true},
    {"{'detail':{'x-limit':[{'numeric':['=',301.81]}]}}", EC2, false},
    {"{'a':[{'numeric':['=',300]}]}", "{'a':3.0e2}", true},
    {"{'a':[{'numeric':['=',300]}]}", "{'a':'300'}", false},
    {"{'a':[{'numeric':['>',0]}]}", "{'a':'5'}", false},
    {"{'a':[{'numeric':['>',0]}]}", "{'a':true}", false},
    {"{'a':[{'numeric':['>',0]}]}", "{'a':null}", false},
    {"{'a':[{'numeric':['>',0]}]}", "{}", false},
    {"{'a':[{'numeric':['>',0]}]}", "{'a':0}", false},
    {"{'a':[{'numeric':['>=',0]}]}", "{'a':0}", true},
    {"{'a':[{'numeric':['>',-10,'<',-1]}]}", "{'a':-5.5}", true},
    {"{'a':[{'numeric':['>',-10,'<',-1]}]}", "{'a':-1}", false},
    {"{'a':[{'numeric':['<',100,'>',10]}]}", "{'a':50}", true},
    {"{'a':[{'numeric':['>=',1.5,'<=',2.5]}]}", "{'a':2.5}", true},
    {"{'a':[{'numeric':['>=',1.5,'<=',2.5]}]}", "{'a':2.5000001}", false},
    {"{'a':[{'numeric':['>',10]}]}", "{'a':[1,2,30]}", true},
    {"{'a':[{'numeric':['>',10]}]}", "{'a':[1,2,3]}", false},
    {"{'a':[{'numeric':['<',0]},{'numeric':['>',100]}]}", "{'a':150}", true},
    {"{'a':[{'numeric':['<',0]},{'numeric':['>',100]}]}", "{'a':50}", false},
    {"{'a':[{'numeric':['>',4999999999]}]}", "{'a':5000000000}", true},
    /* Exists. */
    {"{'detail':{'c-count':[{'exists':true}]}}", EC2, true},
    {"{'detail':{'c-count':[{'exists':false}]}}", EC2, false},
    {"{'detail':{'e-count':[{'exists':false}]}}", EC2, true},
    {"{'detail':{'e-count':[{'exists':true}]}}", EC2, false},
    {"{'a':[{'exists':true}]}", "{'a':null}", true},
    {"{'a':[{'exists':false}]}", "{'a':null}", false},
    {"{'a':[{'exists':true}]}", "{'a':''}", true},
    {"{'a':[{'exists':true}]}", "{'a':[]}", false},
    {"{'a':[{'exists':false}]}", "{'a':[]}", true},
    {"{'a':[{'exists':true}]}", "{'a':[1]}", true},
    {"{'a':[{'exists':true}]}", "{'a':{'b':1}}", false},
    {"{'a':[{'exists':false}]}", "{'a':{'b':1}}", true},
    {"{'a':{'b':[{'exists':false}]}}", "{}", true},
    {"{'a':{'b':[{'exists':false}]}}", "{'a':5}", true},
    {"{'a':{'b':[{'exists':true}]}}", "{}", false},
    {"{'a':[{'exists':false}],'b':['x']}", "{'b':'x'}", true},
    {"{'a':[{'exists':false}],'b':['x']}", "{'a':1,'b':'x'}", false},
    {"{'a':[{'exists':true},'x']}", "{'a':'y'}", true},
    {"{'a':[{'exists':false},'x']}", "{'a':'x'}", true},
    {"{'a':[{'exists':false},'x']}", "{'a':'y'}", false},
    /* Wildcard. */
    {"{'source':[{'wildcard':'aws.*'}]}", EC2, true},
    {"{'EventBusArn':[{'wildcard':'arn:aws:events:us-east-1:*:event-bus/*'}]}",
     "{'EventBusArn':'arn:aws:events:us-east-1:123456789012:event-bus/default'}", true},
    {"{'EventBusArn':[{'wildcard':'arn:aws:events:us-east-1:*:event-bus/*'}]}",
     "{'EventBusArn':'arn:aws:events:us-west-2:123456789012:event-bus/default'}", false},
    {"{'a':[{'wildcard':'Simple*Service'}]}", "{'a':'SimpleQueueService'}", true},
    {"{'a':[{'wildcard':'Simple*Service'}]}", "{'a':'SimpleService'}", true},
    {"{'a':[{'wildcard':'Simple*Service'}]}", "{'a':'SimpleQueueServices'}", false},
    {"{'a':[{'wildcard':'dir/*.png'}]}", "{'a':'dir/a/b.png'}", true},
    {"{'a':[{'wildcard':'dir/*.png'}]}", "{'a':'dir/a.jpg'}", false},
    {"{'a':[{'wildcard':'*'}]}", "{'a':''}", true},
    {"{'a':[{'wildcard':'*'}]}", "{'a':'anything'}", true},
    {"{'a':[{'wildcard':'*'}]}", "{'a':5}", false},
    {"{'a':[{'wildcard':''}]}", "{'a':''}", true},
    {"{'a':[{'wildcard':''}]}", "{'a':'x'}", false},
    {"{'a':[{'wildcard':'abc'}]}", "{'a':'abc'}", true},
    {"{'a':[{'wildcard':'abc'}]}", "{'a':'abcd'}", false},
    {"{'a':[{'wildcard':'*a*b*'}]}", "{'a':'xxaxxbxx'}", true},
    {"{'a':[{'wildcard':'*a*b*'}]}", "{'a':'xxbxxaxx'}", false},
    {"{'a':[{'wildcard':'a*a'}]}", "{'a':'a'}", false},
    {"{'a':[{'wildcard':'a*a'}]}", "{'a':'aa'}", true},
    {"{'a':[{'wildcard':'*ab*ab'}]}", "{'a':'xabyabab'}", true},
    {"{'a':[{'wildcard':'a*b*c'}]}", "{'a':'abcbc'}", true},
    {"{'a':[{'wildcard':'a\\\\*b'}]}", "{'a':'a*b'}", true},
    {"{'a':[{'wildcard':'a\\\\*b'}]}", "{'a':'axb'}", false},
    {"{'a':[{'wildcard':'a\\\\\\\\b'}]}", "{'a':'a\\\\b'}", true},
    {"{'a':[{'wildcard':'*\\\\**'}]}", "{'a':'x*y'}", true},
    {"{'a':[{'wildcard':'*\\\\**'}]}", "{'a':'xy'}", false},
    {"{'a':[{'wildcard':'A*'}]}", "{'a':'abc'}", false},
    /* CIDR. */
    {"{'detail':{'source-ip':[{'cidr':'10.0.0.0/24'}]}}", EC2, true},
    {"{'detail':{'source-ip':[{'cidr':'10.0.1.0/24'}]}}", EC2, false},
    {"{'detail':{'source-ip':[{'cidr':'10.0.0.0/8'}]}}", EC2, true},
    {"{'a':[{'cidr':'192.168.1.7/32'}]}", "{'a':'192.168.1.7'}", true},
    {"{'a':[{'cidr':'192.168.1.0/25'}]}", "{'a':'192.168.1.200'}", false},
    {"{'a':[{'cidr':'0.0.0.0/0'}]}", "{'a':'8.8.8.8'}", true},
    {"{'a':[{'cidr':'10.0.0.0/8'}]}", "{'a':'not an ip'}", false},
    {"{'a':[{'cidr':'2001:db8::/32'}]}", "{'a':'2001:db8:1::5'}", true},
    {"{'a':[{'cidr':'2001:db8::/32'}]}", "{'a':'2001:db9::5'}", false},
    {"{'a':[{'cidr':'2001:db8::/32'}]}", "{'a':'10.0.0.1'}", false},
    /* $or, at the top and nested. */
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization','ReadLatency']},"
     "{'namespace':['AWS/EC2','AWS/ES']}]}",
     "{'source':'aws.cloudwatch','metricName':'ReadLatency'}", true},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization','ReadLatency']},"
     "{'namespace':['AWS/EC2','AWS/ES']}]}",
     "{'source':'aws.cloudwatch','namespace':'AWS/ES'}", true},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization','ReadLatency']},"
     "{'namespace':['AWS/EC2','AWS/ES']}]}",
     "{'source':'aws.cloudwatch','namespace':'AWS/S3'}", false},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization','ReadLatency']},"
     "{'namespace':['AWS/EC2','AWS/ES']}]}",
     "{'source':'aws.s3','metricName':'ReadLatency'}", false},
    {"{'$or':[{'metricName':['CPUUtilization']},{'namespace':['AWS/EC2']}],'detail':{'$or':["
     "{'source':['aws.cloudwatch']},{'detail-type':['CloudWatch Alarm State Change']}]}}",
     "{'namespace':'AWS/EC2','detail':{'detail-type':'CloudWatch Alarm State Change'}}", true},
    {"{'$or':[{'metricName':['CPUUtilization']},{'namespace':['AWS/EC2']}],'detail':{'$or':["
     "{'source':['aws.cloudwatch']},{'detail-type':['CloudWatch Alarm State Change']}]}}",
     "{'namespace':'AWS/EC2','detail':{'detail-type':'other'}}", false},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization']},{'metricType':["
     "'MetricType'],'namespace':['AWS/EC2']},{'scope':['Service']}]}",
     "{'source':'aws.cloudwatch','metricType':'MetricType','namespace':'AWS/EC2'}", true},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization']},{'metricType':["
     "'MetricType'],'namespace':['AWS/EC2']},{'scope':['Service']}]}",
     "{'source':'aws.cloudwatch','metricType':'MetricType'}", false},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization']},{'metricType':["
     "'MetricType'],'namespace':['AWS/EC2'],'$or':[{'metricId':[1234]},{'spaceId':[1000]}]},"
     "{'scope':['Service']}]}",
     "{'source':'aws.cloudwatch','metricType':'MetricType','namespace':'AWS/EC2','spaceId':1000}",
     true},
    {"{'source':['aws.cloudwatch'],'$or':[{'metricName':['CPUUtilization']},{'metricType':["
     "'MetricType'],'namespace':['AWS/EC2'],'$or':[{'metricId':[1234]},{'spaceId':[1000]}]},"
     "{'scope':['Service']}]}",
     "{'source':'aws.cloudwatch','metricType':'MetricType','namespace':'AWS/EC2','spaceId':1}",
     false},
    {"{'$or':[{'a':[{'exists':false}]},{'b':['x']}]}", "{'a':1,'b':'y'}", false},
    {"{'$or':[{'a':[{'exists':false}]},{'b':['x']}]}", "{'b':'y'}", true},
    {"{'$or':[{'a':[{'numeric':['>',10]}]},{'a':[{'numeric':['<',0]}]}]}", "{'a':-3}", true},
    /* Duplicate keys in a pattern: the last wins. */
    {"{'a':['x'],'a':['y']}", "{'a':'y'}", true},
    {"{'a':['x'],'a':['y']}", "{'a':'x'}", false},
    /* Lambda: Kinesis records with data parsed as JSON. */
    {"{'data':{'temperature':[{'numeric':['>',20]}]}}", KIN("{'temperature':30}"), true},
    {"{'data':{'temperature':[{'numeric':['>',20]}]}}", KIN("{'temperature':10}"), false},
    {"{'partitionKey':['1'],'data':{'temperature':[30]}}", KIN("{'temperature':30}"), true},
    {"{'partitionKey':['2'],'data':{'temperature':[30]}}", KIN("{'temperature':30}"), false},
    {"{'data':{'device':{'model':[{'prefix':'RX-'}]}}}",
     KIN("{'device':{'model':'RX-100','fw':'1.2'}}"), true},
    {"{'data':{'temperature':[{'numeric':['>',20]}]}}", KIN("'plain text'"), false},
    {"{'partitionKey':[{'anything-but':['0']}]}", KIN("{}"), true},
    {"{'data':{'tags':['urgent']}}", KIN("{'tags':['low','urgent']}"), true},
    /* Lambda: SQS records with body parsed as JSON. */
    {"{'body':{'RequestCode':['BBBB']}}", SQS("{'RequestCode':'BBBB','Count':3}"), true},
    {"{'body':{'RequestCode':['BBBB']}}", SQS("{'RequestCode':'AAAA','Count':3}"), false},
    {"{'body':{'Count':[{'numeric':['>=',3]}]}}", SQS("{'RequestCode':'BBBB','Count':3}"), true},
    {"{'body':{'RequestCode':['BBBB']}}", SQS("'BBBB'"), false},
    {"{'body':['BBBB']}", SQS("'BBBB'"), true},
    {"{'attributes':{'ApproximateReceiveCount':[{'anything-but':['1']}]}}", SQS("{}"), false},
    {"{'body':{'Location':['New York'],'Day':['Monday']}}",
     SQS("{'Location':'New York','Day':'Monday'}"), true},
    {"{'body':{'Location':['New York'],'Day':['Monday']}}",
     SQS("{'Location':'New York','Day':'Tuesday'}"), false},
    /* Lambda: DynamoDB records. */
    {"{'eventName':['INSERT'],'dynamodb':{'NewImage':{'x':{'S':['v']}}}}",
     DDB("INSERT", "{'x':{'S':'v'}}"), true},
    {"{'eventName':['INSERT'],'dynamodb':{'NewImage':{'x':{'S':['v']}}}}",
     DDB("MODIFY", "{'x':{'S':'v'}}"), false},
    {"{'dynamodb':{'NewImage':{'n':{'N':['5']}}}}", DDB("INSERT", "{'n':{'N':'5'}}"), true},
    {"{'dynamodb':{'NewImage':{'flag':{'BOOL':[true]}}}}", DDB("INSERT", "{'flag':{'BOOL':true}}"),
     true},
    /* Top-level documents that are not objects. */
    {"{'a':['x']}", "[{'a':'y'},{'a':'x'}]", true},
    {"{'a':['x']}", "'a string'", false},
    {"{'a':[{'exists':false}]}", "42", true},
    {"{'a':['x']}", "null", false},
};

static void test_filter_table(void **state)
{
    (void)state;
    char pbuf[2048], dbuf[2048], err[256];
    size_t n = SL_ARRAY_LEN(cases);
    for (size_t i = 0; i < n; i++) {
        const char *pat = q(cases[i].pattern, pbuf, sizeof(pbuf));
        struct sl_pattern *p = NULL;
        int r = sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err));
        if (r != 0) {
            fail_msg("case %zu: pattern %s failed to compile: %s", i, pat, err);
        }
        cJSON *doc = cJSON_Parse(q(cases[i].doc, dbuf, sizeof(dbuf)));
        if (!doc) {
            fail_msg("case %zu: bad test document %s", i, dbuf);
        }
        bool got = sl_pattern_match(p, doc);
        if (got != cases[i].match) {
            fail_msg("case %zu: pattern %s on %s: expected %s", i, pat, dbuf,
                     cases[i].match ? "a match" : "no match");
        }
        cJSON_Delete(doc);
        sl_pattern_free(p);
    }
    print_message("filter: %zu match cases passed\n", n);
    assert_true(n >= 150);
}

struct bad_case {
    const char *pattern;
    const char *error;
};

static const struct bad_case bad_cases[] = {
    {"", "not valid JSON"},
    {"{", "not valid JSON"},
    {"{'a':['x']} x", "text after"},
    {"['a']", "must be a JSON object"},
    {"'a'", "must be a JSON object"},
    {"null", "must be a JSON object"},
    {"{}", "may not be empty at the top level"},
    {"{'a':{}}", "may not be empty at a"},
    {"{'a':'x'}", "expected a list of values or an object, got a string at a"},
    {"{'a':5}", "got a number at a"},
    {"{'a':null}", "got null at a"},
    {"{'a':[]}", "may not be empty at a"},
    {"{'a':{'b':[]}}", "may not be empty at a.b"},
    {"{'a':[['x']]}", "may not contain an array at a"},
    {"{'a':[{}]}", "exactly one key"},
    {"{'a':[{'prefix':'x','suffix':'y'}]}", "exactly one key, this one has 2"},
    {"{'a':[{'contains':'x'}]}", "unknown operator \"contains\""},
    {"{'a':[{'prefix':5}]}", "prefix: expected a string"},
    {"{'a':[{'prefix':{'equals-ignore-case':5}}]}", "prefix: expected a string"},
    {"{'a':[{'prefix':{'wildcard':'x'}}]}", "prefix: expected a string"},
    {"{'a':[{'suffix':['x']}]}", "suffix: expected a string"},
    {"{'a':[{'equals-ignore-case':5}]}", "equals-ignore-case: expected a string"},
    {"{'a':[{'wildcard':5}]}", "wildcard: expected a string"},
    {"{'a':[{'wildcard':'a**b'}]}", "consecutive '*'"},
    {"{'a':[{'wildcard':'a\\\\b'}]}", "must be followed by '*' or '\\'"},
    {"{'a':[{'wildcard':'ab\\\\'}]}", "must be followed by"},
    {"{'a':[{'anything-but':true}]}", "anything-but: expected a string, a number"},
    {"{'a':[{'anything-but':null}]}", "anything-but: expected"},
    {"{'a':[{'anything-but':[]}]}", "anything-but: the list is empty"},
    {"{'a':[{'anything-but':['x',5]}]}", "only strings or only numbers, item 1"},
    {"{'a':[{'anything-but':[5,'x']}]}", "only strings or only numbers, item 1"},
    {"{'a':[{'anything-but':[['x']]}]}", "only strings or only numbers, item 0"},
    {"{'a':[{'anything-but':{'prefix':''}}]}", "non-empty string"},
    {"{'a':[{'anything-but':{'prefix':5}}]}", "prefix: expected a non-empty string"},
    {"{'a':[{'anything-but':{'suffix':''}}]}", "suffix: expected a non-empty string"},
    {"{'a':[{'anything-but':{'numeric':['>',1]}}]}", "anything-but: unknown operator"},
    {"{'a':[{'anything-but':{'prefix':'a','suffix':'b'}}]}", "exactly one key"},
    {"{'a':[{'anything-but':{'equals-ignore-case':[5]}}]}", "item 0 is a number"},
    {"{'a':[{'anything-but':{'wildcard':'a**'}}]}", "consecutive"},
    {"{'a':[{'numeric':5}]}", "numeric: expected an array"},
    {"{'a':[{'numeric':[]}]}", "numeric: expected an operator and a number"},
    {"{'data':{'amount':[{'numeric':['=>',5]}]}}",
     "numeric: expected an operator (= < <= > >=), got \"=>\" at data.amount"},
    {"{'a':[{'numeric':['>','5']}]}", "expected a number after \">\", got a string"},
    {"{'a':[{'numeric':['>']}]}", "expected a number after \">\", got nothing"},
    {"{'a':[{'numeric':[5,'>']}]}", "expected an operator"},
    {"{'a':[{'numeric':['>',5,'>',6]}]}", "more than one lower bound"},
    {"{'a':[{'numeric':['<',5,'<=',6]}]}", "more than one upper bound"},
    {"{'a':[{'numeric':['=',5,'<',6]}]}", "\"=\" must be the only operator"},
    {"{'a':[{'numeric':['>',10,'<',5]}]}", "is not below the upper bound"},
    {"{'a':[{'numeric':['>',5,'<',5]}]}", "is not below the upper bound"},
    {"{'a':[{'numeric':['>',1,'<',5,'<',6]}]}", "at most one lower and one upper"},
    {"{'a':[{'exists':'true'}]}", "exists: expected true or false, got a string"},
    {"{'a':[{'exists':1}]}", "exists: expected true or false"},
    {"{'a':[{'cidr':'10.0.0.0/33'}]}", "prefix length 33 is over 32"},
    {"{'a':[{'cidr':'10.0.0/8'}]}", "not an IP address"},
    {"{'a':[{'cidr':'2001:db8::/129'}]}", "over 128"},
    {"{'a':[{'cidr':'10.0.0.0/x'}]}", "bad prefix length"},
    {"{'a':[{'cidr':5}]}", "cidr: expected a string"},
    {"{'$or':[{'a':['x']}]}", "$or: expected a list of at least two objects, got 1 at $or"},
    {"{'$or':[]}", "got 0"},
    {"{'$or':{'a':['x']}}", "$or: expected a list of at least two objects, got an object at $or"},
    {"{'$or':[{'a':['x']},'b']}", "$or: expected an object, got a string at $or[1]"},
    {"{'$or':[{'a':['x']},{}]}", "may not be empty at $or[1]"},
    {"{'d':{'$or':[{'a':['x']},{'b':[{'numeric':['>']}]}]}}", "at d.$or[1].b"},
    {"{'a':{'b':{'c':[{'prefix':1}]}}}", "at a.b.c"},
};

/* Checks that every pattern of the table is refused with its error. */
static void run_bad(const char *what, const struct bad_case *tab, size_t n)
{
    char pbuf[1024], err[512];
    for (size_t i = 0; i < n; i++) {
        const char *pat = q(tab[i].pattern, pbuf, sizeof(pbuf));
        struct sl_pattern *p = NULL;
        err[0] = '\0';
        int r = sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err));
        if (r != SL_EINVAL) {
            fail_msg("%s case %zu: pattern %s: expected SL_EINVAL, got %d", what, i, pat, r);
        }
        assert_null(p);
        if (!strstr(err, tab[i].error)) {
            fail_msg("%s case %zu: pattern %s: error \"%s\" lacks \"%s\"", what, i, pat, err,
                     tab[i].error);
        }
    }
}

static void test_filter_rejects_bad_patterns(void **state)
{
    (void)state;
    size_t n = SL_ARRAY_LEN(bad_cases);
    run_bad("bad", bad_cases, n);
    print_message("filter: %zu invalid patterns rejected\n", n);
    assert_true(n >= 30);
}

/* Runs a table of match cases; what names the table in failures. */
static void run_cases(const char *what, const struct match_case *tab, size_t n)
{
    char pbuf[2048], dbuf[2048], err[512];
    for (size_t i = 0; i < n; i++) {
        const char *pat = q(tab[i].pattern, pbuf, sizeof(pbuf));
        struct sl_pattern *p = NULL;
        if (sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err)) != 0) {
            fail_msg("%s case %zu: pattern %s failed to compile: %s", what, i, pat, err);
        }
        cJSON *doc = cJSON_Parse(q(tab[i].doc, dbuf, sizeof(dbuf)));
        if (!doc) {
            fail_msg("%s case %zu: bad test document %s", what, i, dbuf);
        }
        if (sl_pattern_match(p, doc) != tab[i].match) {
            fail_msg("%s case %zu: pattern %s on %s: expected %s", what, i, pat, dbuf,
                     tab[i].match ? "a match" : "no match");
        }
        cJSON_Delete(doc);
        sl_pattern_free(p);
    }
}

/* AWS flattens keys with dots: a dotted pattern key and nested event objects name the same
 * path, and the other way round, without changing exact matches, arrays, exists, anything-but
 * or $or. */
static const struct match_case dotted_cases[] = {
    /* The two cases AWS matches and main filtered out. */
    {"{'detail':{'state.status':['running']}}", "{'detail':{'state':{'status':'running'}}}", true},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail':{'state.status':'running'}}", true},
    /* Every spelling of the path, both ways. */
    {"{'detail':{'state.status':['running']}}", "{'detail':{'state.status':'running'}}", true},
    {"{'detail':{'state.status':['running']}}", "{'detail.state.status':'running'}", true},
    {"{'detail':{'state.status':['running']}}", "{'detail.state':{'status':'running'}}", true},
    {"{'detail.state.status':['running']}", "{'detail':{'state':{'status':'running'}}}", true},
    {"{'detail.state':{'status':['running']}}", "{'detail':{'state.status':'running'}}", true},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail.state.status':'running'}", true},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail':{'state':{'status':'running'}}}",
     true},
    /* Values still have to match, and a key is a whole part, not a prefix of one. */
    {"{'detail':{'state.status':['running']}}", "{'detail':{'state':{'status':'stopped'}}}", false},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail':{'state.status':'stopped'}}", false},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail':{'state.statusx':'running'}}",
     false},
    {"{'detail':{'state':{'status':['running']}}}", "{'detail':{'states.status':'running'}}",
     false},
    {"{'a.b':['x']}", "{'a':'x'}", false},
    {"{'a':['x']}", "{'a.b':'x'}", false},
    {"{'a':{'b':['x']}}", "{'a':{'b.c':'x'}}", false},
    /* A path spelled both ways at once: the fields of one object may come from either. */
    {"{'d':{'s':{'a':[1],'b':[2]}}}", "{'d':{'s':{'a':1},'s.b':2}}", true},
    {"{'d':{'s':{'a':[1],'b':[2]}}}", "{'d':{'s':{'a':1},'s.b':3}}", false},
    {"{'a.b':['x']}", "{'a':{'b':'y'},'a.b':'x'}", true},
    /* Arrays: any element, through dotted pattern keys too. */
    {"{'a.b':['x']}", "{'a':[{'b':'y'},{'b':'x'}]}", true},
    {"{'a.b':['x']}", "{'a':[{'b':'y'},{'b':'z'}]}", false},
    {"{'a.b':['x']}", "{'a.b':['y','x']}", true},
    {"{'a':{'b':['x']}}", "{'a.b':['y','x']}", true},
    /* Fields of one nested object still come from one array element. */
    {"{'a':{'b':[1],'c':[2]}}", "{'a':[{'b':1},{'c':2}]}", false},
    {"{'a':{'b':[1],'c':[2]}}", "{'a':[{'b':1},{'b':1,'c':2}]}", true},
    /* exists. */
    {"{'a.b':[{'exists':true}]}", "{'a':{'b':null}}", true},
    {"{'a.b':[{'exists':true}]}", "{'a':{'c':1}}", false},
    {"{'a.b':[{'exists':false}]}", "{'a':{'c':1}}", true},
    {"{'a.b':[{'exists':false}]}", "{'a.b':1}", false},
    {"{'a':{'b':[{'exists':false}]}}", "{'a.b':5}", false},
    {"{'a':{'b':[{'exists':false}]}}", "{'a.c':5}", true},
    {"{'a':{'b':[{'exists':true}]}}", "{'a.b':5}", true},
    {"{'a':[{'exists':false}]}", "{'a.b':5}", true},
    {"{'a':[{'exists':true}]}", "{'a.b':5}", false},
    /* anything-but. */
    {"{'a.b':[{'anything-but':'x'}]}", "{'a':{'b':'y'}}", true},
    {"{'a.b':[{'anything-but':'x'}]}", "{'a.b':'x'}", false},
    {"{'a':{'b':[{'anything-but':{'prefix':['x','y']}}]}}", "{'a.b':'yes'}", false},
    {"{'a':{'b':[{'anything-but':{'prefix':['x','y']}}]}}", "{'a.b':'no'}", true},
    /* $or, with dotted keys inside and around it. */
    {"{'$or':[{'a.b':[1]},{'c':[2]}]}", "{'a':{'b':1}}", true},
    {"{'$or':[{'a.b':[1]},{'c':[2]}]}", "{'a':{'b':2}}", false},
    {"{'d':{'$or':[{'a':[1]},{'b':[2]}]}}", "{'d.b':2}", true},
    {"{'d':{'$or':[{'a':[1]},{'b':[2]}]}}", "{'d.c':2}", false},
    /* Empty parts: "a..b" is the path a, "", b. */
    {"{'a..b':['x']}", "{'a':{'':{'b':'x'}}}", true},
    {"{'a..b':['x']}", "{'a.':{'b':'x'}}", true},
    {"{'a':{'':{'b':['x']}}}", "{'a..b':'x'}", true},
    {"{'a..b':['x']}", "{'a':{'b':'x'}}", false},
    /* A document that is an array of objects. */
    {"{'a.b':['x']}", "[{'a':{'b':'y'}},{'a.b':'x'}]", true},
};

/* Each part of a dotted key is one level of nesting, so matching stays as shallow as before. */
static const struct bad_case dotted_bad_cases[] = {
    {"{'k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k.k':['x']}",
     "nests deeper than 32 levels (each part of a dotted key is one)"},
};

static void test_filter_dotted_keys(void **state)
{
    (void)state;
    run_cases("dotted", dotted_cases, SL_ARRAY_LEN(dotted_cases));
    run_bad("dotted", dotted_bad_cases, SL_ARRAY_LEN(dotted_bad_cases));
    /* A payload pattern with a dotted key looks inside the payload, as a nested one does. */
    char buf[256], err[256];
    cJSON *crit = cJSON_Parse(
        q("{'Filters':[{'Pattern':'{\\'data.level\\':[\\'warn\\']}'}]}", buf, sizeof(buf)));
    assert_non_null(crit);
    struct sl_filter *f = NULL;
    assert_int_equal(sl_filter_compile(crit, &f, err, sizeof(err)), 0);
    assert_true(sl_filter_uses_field(f, "data"));
    cJSON *d = cJSON_Parse(q("{'partitionKey':'k','data':{'level':'warn'}}", buf, sizeof(buf)));
    assert_true(sl_filter_match_payload(f, d, "data"));
    cJSON_Delete(d);
    d = cJSON_Parse(q("{'partitionKey':'k','data':'warn'}", buf, sizeof(buf)));
    assert_false(sl_filter_match_payload(f, d, "data"));
    cJSON_Delete(d);
    sl_filter_free(f);
    cJSON_Delete(crit);
}

/* anything-but with a list of prefixes or suffixes (and the ignore-case and wildcard lists):
 * matches when the value has none of them. */
static const struct match_case anything_but_list_cases[] = {
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':'running'}", true},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':'initializing'}", false},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':'testing'}", false},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':'Testing'}", true},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':5}", true},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{}", false},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':['init-a','run']}", true},
    {"{'state':[{'anything-but':{'prefix':['init','test']}}]}", "{'state':['init-a','test-b']}",
     false},
    {"{'state':[{'anything-but':{'prefix':['init']}}]}", "{'state':'ini'}", true},
    {"{'f':[{'anything-but':{'suffix':['.png','.jpg']}}]}", "{'f':'a.gif'}", true},
    {"{'f':[{'anything-but':{'suffix':['.png','.jpg']}}]}", "{'f':'a.png'}", false},
    {"{'f':[{'anything-but':{'suffix':['.png','.jpg']}}]}", "{'f':'b.jpg'}", false},
    {"{'f':[{'anything-but':{'suffix':['.png','.jpg']}}]}", "{'f':'png'}", true},
    {"{'f':[{'anything-but':{'suffix':'.png'}}]}", "{'f':'a.png'}", false},
    {"{'state':[{'anything-but':{'equals-ignore-case':['init','TEST']}}]}", "{'state':'Test'}",
     false},
    {"{'state':[{'anything-but':{'wildcard':['i*t','*st']}}]}", "{'state':'test'}", false},
    {"{'state':[{'anything-but':{'wildcard':['i*t','*st']}}]}", "{'state':'tester'}", true},
    /* Beside other matchers of the same field: an OR. */
    {"{'state':['init-x',{'anything-but':{'prefix':['init','test']}}]}", "{'state':'init-x'}",
     true},
};

static void test_filter_anything_but_lists(void **state)
{
    (void)state;
    run_cases("anything-but list", anything_but_list_cases, SL_ARRAY_LEN(anything_but_list_cases));
}

/* Wildcards at or under the complexity AWS accepts still compile: the documented examples,
 * the rewrites EventBridge's page suggests, and the edge of the limit. */
static void test_filter_wildcard_complexity_accepted(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{'a':[{'wildcard':'arn:aws:events:us-east-1:*:event-bus/*'}]}",
        "{'a':[{'wildcard':'/Users/*/doc.txt'}]}",
        "{'a':[{'wildcard':'/Users/*/dir/dir/dir/dir/dir/doc.txt'}]}",
        "{'a':[{'wildcard':'Simple*Service'}]}",
        "{'a':[{'wildcard':'*/lib/*'}]}",
        "{'a':[{'wildcard':'*a*a*a*a*'}]}",  /* 9 */
        "{'a':[{'wildcard':'*:*:*:*:*'}]}",  /* 9 */
        "{'a':[{'wildcard':'*:*:*:*:*:'}]}", /* 10, the limit */
        "{'a':[{'wildcard':'*'},{'wildcard':'*'}]}",
        "{'s':[{'wildcard':'*:stack/SharedStack/*'},{'wildcard':'*:stack/DataStack/*'},"
        "{'wildcard':'*:stack/ApiStack/*'}]}", /* 9 */
        "{'a':[{'wildcard':'*x*'}],'b':[{'wildcard':'*x*'}],'c':[{'wildcard':'*x*'}],"
        "'d':[{'wildcard':'*x*'}]}", /* fields are measured one by one */
    };
    char pbuf[1024], err[512];
    for (size_t i = 0; i < SL_ARRAY_LEN(ok); i++) {
        const char *pat = q(ok[i], pbuf, sizeof(pbuf));
        struct sl_pattern *p = NULL;
        if (sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err)) != 0) {
            fail_msg("pattern %s refused: %s", pat, err);
        }
        sl_pattern_free(p);
    }
    /* A long wildcard near the size limit is measured and accepted: its literal part repeats,
     * but only after a 'Z' that appears once, so no two places in it are alive at once. */
    char big[4200];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"a\":[{\"wildcard\":\"x*Z");
    for (size_t i = 0; i < 4000; i++) {
        big[n++] = (char)('a' + i % 7);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "*\"}]}");
    struct sl_pattern *p = NULL;
    if (sl_pattern_compile(big, n, &p, err, sizeof(err)) != 0) {
        fail_msg("the long wildcard was refused: %s", err);
    }
    sl_pattern_free(p);
}

/* A bad item of a list is named by its value and its own path, not "got an array". */
static const struct bad_case item_cases[] = {
    {"{'state':[{'anything-but':{'prefix':['init',123]}}]}",
     "anything-but: prefix: expected a list of non-empty strings, item 1 is a number (123) at "
     "state[0].anything-but.prefix[1]"},
    {"{'d':{'state':['x',{'anything-but':{'suffix':['.png',null]}}]}}",
     "anything-but: suffix: expected a list of non-empty strings, item 1 is null at "
     "d.state[1].anything-but.suffix[1]"},
    {"{'a':[{'anything-but':{'prefix':['a','']}}]}",
     "item 1 is a string (\"\") at a[0].anything-but.prefix[1]"},
    {"{'a':[{'anything-but':{'prefix':[]}}]}", "anything-but: prefix: the list is empty at a"},
    {"{'a':[{'anything-but':{'prefix':{'equals-ignore-case':'x'}}}]}",
     "anything-but: prefix: expected a non-empty string or a list of them, got an object at a"},
    {"{'a':[{'anything-but':{'equals-ignore-case':['x',true]}}]}",
     "equals-ignore-case: expected a list of strings, item 1 is a boolean (true) at "
     "a[0].anything-but.equals-ignore-case[1]"},
    {"{'a':[{'anything-but':{'wildcard':['*x',2.5]}}]}",
     "item 1 is a number (2.5) at a[0].anything-but.wildcard[1]"},
    {"{'a':[{'anything-but':['x',123]}]}",
     "only strings or only numbers, item 1 is a number (123) at a[0].anything-but[1]"},
};

static void test_filter_list_item_errors(void **state)
{
    (void)state;
    run_bad("item", item_cases, SL_ARRAY_LEN(item_cases));
}

/* Wildcards AWS refuses as too complex: one value can match more than 10 prefixes of them at
 * once. */
static const struct bad_case complex_cases[] = {
    {"{'EventBusArn':[{'wildcard':'*:*:*:*:*:event-bus/*'}]}",
     "wildcard: \"*:*:*:*:*:event-bus/*\" is too complex: one value can match more than 10 of "
     "its prefixes at once"},
    {"{'EventBusArn':[{'wildcard':'*:*:*:*:*:event-bus/*'}]}", "at EventBusArn[0].wildcard"},
    {"{'d':{'f':['x',{'anything-but':{'wildcard':['*a','*a*a*a*a*a*']}}]}}",
     "\"*a*a*a*a*a*\" is too complex: one value can match more than 10 of its prefixes at once "
     "(AWS refuses such a pattern); use fewer '*' characters or fewer repeated sequences after a "
     "'*' at d.f[1].anything-but.wildcard[1]"},
    {"{'s':[{'wildcard':'*:stack/SharedStack/*'},{'wildcard':'*:stack/DataStack/*'},"
     "{'wildcard':'*:stack/ApiStack/*'},{'wildcard':'*:stack/MonitoringStack/*'}]}",
     "the field's 4 wildcard patterns are too complex together: one value can match more than "
     "10 of their prefixes at once (AWS refuses such a pattern); use fewer '*' characters or "
     "fewer repeated sequences after a '*' at s"},
    {"{'a.b':[{'wildcard':'*x*x*x*x*x*'}]}", "\"*x*x*x*x*x*\" is too complex"},
    {"{'a.b':[{'wildcard':'*x*x*x*x*x*'}]}", "at a.b[0].wildcard"},
    /* The pattern is quoted back with its escapes. */
    {"{'a':[{'wildcard':'a\\\\*b*x*x*x*x*x*'}]}", "\"a\\*b*x*x*x*x*x*\" is too complex"},
};

static void test_filter_wildcard_complexity_refused(void **state)
{
    (void)state;
    run_bad("complex", complex_cases, SL_ARRAY_LEN(complex_cases));
    /* A long literal that repeats after a '*': every repeat is a place a value can be in at
     * once. */
    char big[4200], err[512];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"a\":[{\"wildcard\":\"x*");
    for (size_t i = 0; i < 4000; i++) {
        big[n++] = (char)('a' + i % 7);
    }
    n += (size_t)snprintf(big + n, sizeof(big) - n, "*\"}]}");
    struct sl_pattern *p = NULL;
    assert_int_equal(sl_pattern_compile(big, n, &p, err, sizeof(err)), SL_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err, "is too complex"));
    assert_non_null(strstr(err, "at a[0].wildcard"));
}

static void test_filter_pattern_limits(void **state)
{
    (void)state;
    char err[256];
    struct sl_pattern *p = NULL;
    /* Exactly 4096 characters compiles; 4097 does not. */
    static char text[8192];
    const char *head = "{\"a\":[\"";
    size_t hl = strlen(head);
    memcpy(text, head, hl);
    size_t fill = SL_FILTER_MAX_PATTERN_LEN - hl - 3;
    memset(text + hl, 'x', fill);
    memcpy(text + hl + fill, "\"]}", 4);
    assert_int_equal(strlen(text), SL_FILTER_MAX_PATTERN_LEN);
    assert_int_equal(sl_pattern_compile(text, strlen(text), &p, err, sizeof(err)), 0);
    sl_pattern_free(p);
    p = NULL;
    memmove(text + 1, text, strlen(text) + 1);
    text[0] = ' ';
    assert_int_equal(sl_pattern_compile(text, strlen(text), &p, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "over the limit of 4096"));
    /* The limit counts characters, not bytes: 2000 two-byte characters are fine. */
    size_t o = 0;
    memcpy(text, head, hl);
    o = hl;
    for (int i = 0; i < 2000; i++) {
        text[o++] = '\xc3';
        text[o++] = '\xa9';
    }
    memcpy(text + o, "\"]}", 4);
    assert_int_equal(sl_pattern_compile(text, strlen(text), &p, err, sizeof(err)), 0);
    sl_pattern_free(p);
    /* Nesting beyond the depth limit is rejected, with a path. */
    o = 0;
    for (int i = 0; i < 40; i++) {
        memcpy(text + o, "{\"k\":", 5);
        o += 5;
    }
    memcpy(text + o, "[1]", 3);
    o += 3;
    memset(text + o, '}', 40);
    text[o + 40] = '\0';
    p = NULL;
    assert_int_equal(sl_pattern_compile(text, strlen(text), &p, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "nests deeper than"));
    assert_non_null(strstr(err, "at k.k.k"));
    /* The text need not be NUL-terminated: len bounds it. */
    const char *two = "{\"a\":[\"x\"]}{\"b\":1}";
    assert_int_equal(sl_pattern_compile(two, 11, &p, err, sizeof(err)), 0);
    sl_pattern_free(p);
    /* A tiny error buffer is truncated, not overrun. */
    char tiny[8];
    assert_int_equal(sl_pattern_compile("{}", 2, &p, tiny, sizeof(tiny)), SL_EINVAL);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static struct sl_filter *criteria(const char *json, int want, char *err, size_t errlen)
{
    char buf[4096];
    cJSON *c = cJSON_Parse(q(json, buf, sizeof(buf)));
    assert_non_null(c);
    struct sl_filter *f = NULL;
    int r = sl_filter_compile(c, &f, err, errlen);
    cJSON_Delete(c);
    if (r != want) {
        fail_msg("criteria %s: expected %d, got %d (%s)", json, want, r, err);
    }
    return f;
}

static bool matches(const struct sl_filter *f, const char *doc)
{
    char buf[2048];
    cJSON *d = cJSON_Parse(q(doc, buf, sizeof(buf)));
    assert_non_null(d);
    bool m = sl_filter_match(f, d);
    cJSON_Delete(d);
    return m;
}

static void test_filter_criteria_counts(void **state)
{
    (void)state;
    char err[512];
    struct sl_filter *f = criteria("{}", 0, err, sizeof(err));
    assert_int_equal(sl_filter_count(f), 0);
    assert_true(matches(f, "{'anything':1}"));
    assert_false(sl_filter_uses_field(f, "data"));
    sl_filter_free(f);

    f = criteria("{'Filters':[]}", 0, err, sizeof(err));
    assert_int_equal(sl_filter_count(f), 0);
    assert_true(matches(f, "{}"));
    sl_filter_free(f);

    f = criteria("{'Filters':[{'Pattern':'{\\'data\\':{\\'t\\':[1]}}'}]}", 0, err, sizeof(err));
    assert_int_equal(sl_filter_count(f), 1);
    assert_true(matches(f, "{'data':{'t':1}}"));
    assert_false(matches(f, "{'data':{'t':2}}"));
    assert_true(sl_filter_uses_field(f, "data"));
    assert_false(sl_filter_uses_field(f, "body"));
    assert_false(sl_filter_uses_field(f, "t"));
    sl_filter_free(f);

    /* Five filters are ORed. */
    f = criteria("{'Filters':[{'Pattern':'{\\'a\\':[1]}'},{'Pattern':'{\\'a\\':[2]}'},"
                 "{'Pattern':'{\\'b\\':[{\\'prefix\\':\\'x\\'}]}'},{'Pattern':'{\\'$or\\':[{"
                 "\\'c\\':[1]},{\\'body\\':[2]}]}'},{'Pattern':'{\\'d\\':[{\\'exists\\':true}]}'}"
                 "]}",
                 0, err, sizeof(err));
    assert_int_equal(sl_filter_count(f), 5);
    assert_true(matches(f, "{'a':1}"));
    assert_true(matches(f, "{'a':2}"));
    assert_true(matches(f, "{'b':'xyz'}"));
    assert_true(matches(f, "{'c':1}"));
    assert_true(matches(f, "{'body':2}"));
    assert_true(matches(f, "{'d':null}"));
    assert_false(matches(f, "{'a':3,'b':'y','c':2}"));
    assert_true(sl_filter_uses_field(f, "body"));
    assert_true(sl_filter_uses_field(f, "d"));
    assert_false(sl_filter_uses_field(f, "data"));
    sl_filter_free(f);

    /* Six are too many. */
    f = criteria("{'Filters':[{'Pattern':'{\\'a\\':[1]}'},{'Pattern':'{\\'a\\':[2]}'},"
                 "{'Pattern':'{\\'a\\':[3]}'},{'Pattern':'{\\'a\\':[4]}'},"
                 "{'Pattern':'{\\'a\\':[5]}'},{'Pattern':'{\\'a\\':[6]}'}]}",
                 SL_EINVAL, err, sizeof(err));
    assert_null(f);
    assert_non_null(strstr(err, "at most 5"));
}

static void test_filter_criteria_bad_shapes(void **state)
{
    (void)state;
    static const struct bad_case shapes[] = {
        {"[]", "FilterCriteria: expected an object"},
        {"{'filters':[]}", "unknown key \"filters\""},
        {"{'Filters':{}}", "Filters: expected a list"},
        {"{'Filters':'x'}", "Filters: expected a list"},
        {"{'Filters':['{}']}", "Filters[0]: expected an object with exactly one key"},
        {"{'Filters':[{}]}", "Filters[0]: expected an object"},
        {"{'Filters':[{'pattern':'{}'}]}", "Filters[0]: expected"},
        {"{'Filters':[{'Pattern':'{\\'a\\':[1]}','Extra':1}]}", "Filters[0]: expected"},
        {"{'Filters':[{'Pattern':{'a':[1]}}]}", "Filters[0].Pattern: expected a string"},
        {"{'Filters':[{'Pattern':'{\\'a\\':[1]}'},{'Pattern':'{\\'a\\':[]}'}]}",
         "Filters[1].Pattern: a list of values may not be empty at a"},
        {"{'Filters':[{'Pattern':'not json'}]}", "Filters[0].Pattern: the pattern is not valid"},
        {"{'Filters':[{'Pattern':''}]}", "Filters[0].Pattern:"},
        {"{'Filters':[{'Pattern':'{\\'data\\':{\\'n\\':[{\\'numeric\\':[\\'=>\\',1]}]}}'}]}",
         "Filters[0].Pattern: numeric: expected an operator (= < <= > >=), got \"=>\" at data.n"},
    };
    char err[512];
    for (size_t i = 0; i < SL_ARRAY_LEN(shapes); i++) {
        err[0] = '\0';
        struct sl_filter *f = criteria(shapes[i].pattern, SL_EINVAL, err, sizeof(err));
        assert_null(f);
        if (!strstr(err, shapes[i].error)) {
            fail_msg("criteria %zu: error \"%s\" lacks \"%s\"", i, err, shapes[i].error);
        }
    }
    print_message("filter: %zu bad FilterCriteria shapes rejected\n", SL_ARRAY_LEN(shapes));
}

static void test_filter_deep_and_huge_documents(void **state)
{
    (void)state;
    char err[256];
    struct sl_pattern *p = NULL;
    const char *pat = "{\"a\":[\"x\"],\"b\":{\"c\":[{\"exists\":false}]}}";
    assert_int_equal(sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err)), 0);

    /* Arrays nested 20000 deep under "a" and objects 20000 deep under "b". */
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    cJSON *inner = arr;
    for (int i = 0; i < 20000; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(inner, next);
        inner = next;
    }
    cJSON_AddItemToArray(inner, cJSON_CreateString("x"));
    cJSON_AddItemToObject(doc, "a", arr);
    cJSON *obj = cJSON_CreateObject();
    cJSON *o = obj;
    for (int i = 0; i < 20000; i++) {
        cJSON *next = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "z", next);
        o = next;
    }
    cJSON_AddItemToObject(doc, "b", obj);
    /* The deep "x" is beyond the array depth matching looks through. */
    assert_false(sl_pattern_match(p, doc));
    cJSON_Delete(doc);

    /* A huge array: the match is found at the end. */
    doc = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(doc, "a");
    for (int i = 0; i < 200000; i++) {
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(i));
    }
    cJSON_AddItemToArray(arr, cJSON_CreateString("x"));
    assert_true(sl_pattern_match(p, doc));
    cJSON_Delete(doc);
    sl_pattern_free(p);
}

static void test_filter_bytes_not_utf8(void **state)
{
    (void)state;
    char err[256];
    struct sl_pattern *p = NULL;
    const char *pat = "{\"a\":[{\"equals-ignore-case\":\"\377A\"},{\"suffix\":{\"equals-ignore-"
                      "case\":\"\xe2\x82\"}},{\"wildcard\":\"*\xc0*\"}]}";
    assert_int_equal(sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err)), 0);
    const char *docs[] = {"\377a",        "x\xe2\x82", "\xc0",
                          "\xe2",         "\xf0\x9f",  "\xf4\x90\x80\x80",
                          "\xed\xa0\x80", "\xc1\x81",  "plain"};
    const bool want[] = {true, true, true, false, false, false, false, false, false};
    for (size_t i = 0; i < SL_ARRAY_LEN(docs); i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "a", docs[i]);
        if (sl_pattern_match(p, d) != want[i]) {
            fail_msg("bytes case %zu", i);
        }
        cJSON_Delete(d);
    }
    sl_pattern_free(p);
    /* Every operator against every kind of value, including raw and invalid items. */
    const char *all =
        "{\"a\":[\"s\",1,true,false,null,{\"prefix\":\"p\"},{\"suffix\":\"s\"},"
        "{\"equals-ignore-case\":\"E\"},{\"wildcard\":\"w*\"},{\"numeric\":[\">\",9]},"
        "{\"cidr\":\"1.2.3.0/24\"},{\"anything-but\":{\"prefix\":\"q\"}}]}";
    assert_int_equal(sl_pattern_compile(all, strlen(all), &p, err, sizeof(err)), 0);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "a", cJSON_CreateRaw("{}"));
    assert_false(sl_pattern_match(p, d));
    cJSON_Delete(d);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "a", "qq");
    assert_false(sl_pattern_match(p, d));
    cJSON_Delete(d);
    sl_pattern_free(p);
}

static void test_filter_oom_paths(void **state)
{
    (void)state;
    /* Compile a pattern using every allocation site; freeing after each partial failure is
     * checked by the sanitizers when SL_ALLOC_FAIL_AT is set for the whole run. Here just
     * make sure a complex pattern compiles and frees cleanly. */
    const char *pat = "{\"a\":[{\"wildcard\":\"a*b\"},{\"anything-but\":{\"wildcard\":[\"x*\",\"y*"
                      "\"]}},{\"anything-but\":{\"equals-ignore-case\":[\"A\",\"B\"]}},{\"prefix"
                      "\":{\"equals-ignore-case\":\"Q\"}}],\"$or\":[{\"b\":[1]},{\"c\":{\"d\":[\"e"
                      "\"]}}]}";
    char err[256];
    struct sl_pattern *p = NULL;
    assert_int_equal(sl_pattern_compile(pat, strlen(pat), &p, err, sizeof(err)), 0);
    sl_pattern_free(p);
    sl_pattern_free(NULL);
    sl_filter_free(NULL);
}

static bool matches_payload(const struct sl_filter *f, const char *doc)
{
    char buf[2048];
    cJSON *d = cJSON_Parse(q(doc, buf, sizeof(buf)));
    assert_non_null(d);
    bool m = sl_filter_match_payload(f, d, "data");
    cJSON_Delete(d);
    return m;
}

/* Lambda's payload rule: a pattern that looks inside data never matches a line that is not
 * JSON, even through exists:false; metadata patterns and plain data patterns still apply. */
static void test_filter_payload_rule(void **state)
{
    (void)state;
    char err[256];
    struct sl_filter *f = criteria("{'Filters':[{'Pattern':'{\\'data\\':{\\'level\\':"
                                   "[{\\'exists\\':false}]}}'}]}",
                                   0, err, sizeof(err));
    assert_true(matches_payload(f, "{'partitionKey':'k','data':{'msg':'x'}}"));
    assert_false(matches_payload(f, "{'partitionKey':'k','data':{'level':'x'}}"));
    assert_false(matches_payload(f, "{'partitionKey':'k','data':'level error'}"));
    /* The plain matcher, EventBridge's rule, would take the string. */
    assert_true(matches(f, "{'partitionKey':'k','data':'level error'}"));
    sl_filter_free(f);
    f = criteria("{'Filters':[{'Pattern':'{\\'data\\':{\\'a\\':[1]}}'},"
                 "{'Pattern':'{\\'partitionKey\\':[\\'k\\']}'}]}",
                 0, err, sizeof(err));
    assert_true(matches_payload(f, "{'partitionKey':'k','data':'text'}"));
    assert_false(matches_payload(f, "{'partitionKey':'z','data':'text'}"));
    assert_true(matches_payload(f, "{'partitionKey':'z','data':{'a':1}}"));
    sl_filter_free(f);
    f = criteria("{'Filters':[{'Pattern':'{\\'data\\':[\\'text\\']}'}]}", 0, err, sizeof(err));
    assert_true(matches_payload(f, "{'partitionKey':'z','data':'text'}"));
    sl_filter_free(f);
}

/* Kafka's rule: a value that is not JSON gets metadata filters only; it is not dropped. */
static void test_filter_payload_mismatch_ignored(void **state)
{
    (void)state;
    char err[256];
    static const char *const kafka[] = {"key", "value", NULL};
    struct sl_filter *f = criteria("{'Filters':[{'Pattern':'{\\'topic\\':[\\'t\\'],"
                                   "\\'value\\':{\\'a\\':[1]}}'}]}",
                                   0, err, sizeof(err));
    char buf[512];
    cJSON *d = cJSON_Parse(q("{'topic':'t','value':'plain text'}", buf, sizeof(buf)));
    assert_true(sl_filter_match_fields(f, d, kafka, true));
    assert_false(sl_filter_match_fields(f, d, kafka, false));
    cJSON_Delete(d);
    d = cJSON_Parse(q("{'topic':'u','value':'plain text'}", buf, sizeof(buf)));
    assert_false(sl_filter_match_fields(f, d, kafka, true));
    cJSON_Delete(d);
    d = cJSON_Parse(q("{'topic':'t','value':{'a':2}}", buf, sizeof(buf)));
    assert_false(sl_filter_match_fields(f, d, kafka, true));
    cJSON_Delete(d);
    d = cJSON_Parse(q("{'topic':'t','value':{'a':1}}", buf, sizeof(buf)));
    assert_true(sl_filter_match_fields(f, d, kafka, true));
    cJSON_Delete(d);
    sl_filter_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_filter_rejects_bad_patterns),
        cmocka_unit_test(test_filter_pattern_limits),
        cmocka_unit_test(test_filter_criteria_counts),
        cmocka_unit_test(test_filter_criteria_bad_shapes),
        cmocka_unit_test(test_filter_deep_and_huge_documents),
        cmocka_unit_test(test_filter_bytes_not_utf8),
        cmocka_unit_test(test_filter_oom_paths),
        cmocka_unit_test(test_filter_payload_rule),
        cmocka_unit_test(test_filter_payload_mismatch_ignored),
        cmocka_unit_test(test_filter_list_item_errors),
        cmocka_unit_test(test_filter_wildcard_complexity_refused),
        cmocka_unit_test(test_filter_dotted_keys),
        cmocka_unit_test(test_filter_anything_but_lists),
        cmocka_unit_test(test_filter_wildcard_complexity_accepted),
    };
    return cmocka_run_group_tests_name("filter", tests, NULL, NULL);
}
