/* SPDX-License-Identifier: Apache-2.0 */
/* test_sigv4.c: the SigV4 signer against AWS's published test suite (aws-sig-v4-test-suite:
 * credentials AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service"), comparing the
 * canonical request, the string to sign and the Authorization header of each vector; the
 * session-token vector (post-sts-header-before); S3's single-encoding rule with
 * X-Amz-Content-Sha256 against the GET Object example of S3's SigV4 documentation; and the
 * signing-key cache, the header lines produced and the inputs refused. Time is a parameter,
 * so nothing here reads a clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sigv4.h"

#define SUITE_KEY_ID  "AKIDEXAMPLE"
#define SUITE_SECRET  "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME_MS (1440938160LL * 1000) /* 2015-08-30T12:36:00Z */
#define SUITE_TOKEN                                                                                \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSP" \
    "fIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT" \
    "7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKml"  \
    "zm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

struct vector {
    const char *name; /* the test's folder name in the suite */
    const char *method;
    const char *path;
    const char *query;
    const char *headers; /* "Name:value" lines besides Host and X-Amz-Date, '\n'-separated */
    const char *body;
    bool token;            /* signed with the suite's session token */
    const char *canonical; /* the suite's .creq */
    const char *sts_hash;  /* the last line of the suite's .sts */
    const char *authz;     /* the suite's .authz */
};

/* The published vectors (the folder names of AWS's suite). The multi-line header vector
 * (obsolete line folding, which curl never sends) and post-x-www-form-urlencoded-parameters
 * are left out. */
static const struct vector vectors[] = {
    {"get-vanilla", "GET", "/", NULL, "", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key", "GET", "/", "Param1=value1", "", "", false,
     "GET\n/"
     "\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1", "", "", false,
     "GET\n/"
     "\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:"
     "20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", "", "", false,
     "GET\n/"
     "\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:"
     "20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1", "", "", false,
     "GET\n/"
     "\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:"
     "20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved", "GET", "/",
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~"
     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     "", "", false,
     "GET\n/"
     "\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~"
     "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws."
     "com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query", "GET", "/",
     "\xe1"
     "\x88"
     "\xb4"
     "=bar",
     "", "", false,
     "GET\n/"
     "\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    {"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
     NULL, "", "", false,
     "GET\n/"
     "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws."
     "com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-utf8", "GET",
     "/\xe1"
     "\x88"
     "\xb4"
     "",
     NULL, "", "", false,
     "GET\n/"
     "%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
    {"get-header-key-duplicate", "GET", "/", NULL,
     "My-Header1:value2\nMy-Header1:value2\nMy-Header1:value1", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:"
     "20150830T123600Z\n\nhost;my-header1;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;my-header1;x-amz-date, "
     "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order", "GET", "/", NULL,
     "My-Header1:value4\nMy-Header1:value1\nMy-Header1:value3\nMy-Header1:value2", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:"
     "20150830T123600Z\n\nhost;my-header1;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;my-header1;x-amz-date, "
     "Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-trim", "GET", "/", NULL, "My-Header1: value1\nMy-Header2: \"a   b   c\"", "",
     false,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b "
     "c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
     "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"post-vanilla", "POST", "/", NULL, "", "", false,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-query", "POST", "/", "Param1=value1", "", "", false,
     "POST\n/"
     "\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-header-key-case", "POST", "/", NULL, "", "", false,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-sort", "POST", "/", NULL, "My-Header1:value1", "", false,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-"
     "header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;my-header1;x-amz-date, "
     "Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case", "POST", "/", NULL, "My-Header1:VALUE1", "", false,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-"
     "header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;my-header1;x-amz-date, "
     "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-x-www-form-urlencoded", "POST", "/", NULL,
     "Content-Type:application/x-www-form-urlencoded", "Param1=value1", false,
     "POST\n/\n\ncontent-type:application/"
     "x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-"
     "type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=content-type;host;x-amz-date, "
     "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"post-sts-header-before", "POST", "/", NULL, "", "", true,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:"
     "AQoDYXdzEPT//////////"
     "wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthA"
     "x7mSEI/qkPpKPi/"
     "kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHN"
     "VXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
     "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/"
     "oLxBA==\n\nhost;x-amz-date;x-amz-security-"
     "token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date;x-amz-security-token, "
     "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
    {"get-relative", "GET", "/example/..", NULL, "", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-relative-relative", "GET", "/example1/example2/../..", NULL, "", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash", "GET", "//", NULL, "", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-dot-slash", "GET", "/./", NULL, "", "", false,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-pointless-dot", "GET", "/./example", NULL, "", "", false,
     "GET\n/"
     "example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
    {"get-slashes", "GET", "//example//", NULL, "", "", false,
     "GET\n/example/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {"get-space", "GET", "/example space/", NULL, "", "", false,
     "GET\n/example%20space/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
     "date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
     "SignedHeaders=host;x-amz-date, "
     "Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
};

/* Splits v->headers into h (pointing into buf). */
static size_t parse_headers(const char *text, char *buf, size_t buflen, struct sl_sigv4_header *h)
{
    size_t n = 0;
    snprintf(buf, buflen, "%s", text);
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *end = nl ? nl : p + strlen(p);
        char *colon = memchr(p, ':', (size_t)(end - p));
        assert_non_null(colon);
        h[n].name = p;
        h[n].name_len = (size_t)(colon - p);
        h[n].value = colon + 1;
        h[n].value_len = (size_t)(end - colon - 1);
        n++;
        p = nl ? nl + 1 : end;
    }
    return n;
}

static void test_sigv4_aws_test_suite(void **state)
{
    (void)state;
    struct sl_sigv4 *plain, *with_token;
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, SUITE_SECRET, NULL, &plain), 0);
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, SUITE_SECRET, SUITE_TOKEN, &with_token), 0);
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];
        char buf[512];
        struct sl_sigv4_header h[8];
        struct sl_sigv4_req req = {
            .method = v->method,
            .host = "example.amazonaws.com",
            .path = v->path,
            .query = v->query,
            .headers = h,
            .n_headers = parse_headers(v->headers, buf, sizeof(buf), h),
            .payload = v->body,
            .payload_len = strlen(v->body),
            .region = "us-east-1",
            .service = "service",
        };
        int r = sl_sigv4_sign(v->token ? with_token : plain, &req, SUITE_TIME_MS, &out);
        if (r != 0) {
            fail_msg("%s: sign returned %d", v->name, r);
        }
        if (strcmp(out.canonical.data, v->canonical) != 0) {
            fail_msg("%s: canonical request\n%s\nwant\n%s", v->name, out.canonical.data,
                     v->canonical);
        }
        char sts[256];
        snprintf(sts, sizeof(sts),
                 "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n%s",
                 v->sts_hash);
        if (strcmp(out.string_to_sign.data, sts) != 0) {
            fail_msg("%s: string to sign\n%s\nwant\n%s", v->name, out.string_to_sign.data, sts);
        }
        if (strcmp(out.authorization, v->authz) != 0) {
            fail_msg("%s: authorization\n%s\nwant\n%s", v->name, out.authorization, v->authz);
        }
        assert_string_equal(out.amz_date, "20150830T123600Z");
    }
    /* One key per (date, region, service), whatever the number of requests. */
    assert_int_equal(sl_sigv4_key_derivations(plain), 1);
    assert_int_equal(sl_sigv4_key_derivations(with_token), 1);
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(plain);
    sl_sigv4_free(with_token);
}

/* The lines to add: X-Amz-Date, the token, Authorization, in that order; no secret in them. */
static void test_sigv4_header_lines_with_session_token(void **state)
{
    (void)state;
    struct sl_sigv4 *s;
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, SUITE_SECRET, SUITE_TOKEN, &s), 0);
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    struct sl_sigv4_req req = {.method = "POST",
                               .host = "example.amazonaws.com",
                               .path = "/",
                               .region = "us-east-1",
                               .service = "service"};
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    assert_int_equal(out.n_lines, 3);
    assert_string_equal(out.lines[0], "X-Amz-Date: 20150830T123600Z");
    assert_string_equal(out.lines[1], "X-Amz-Security-Token: " SUITE_TOKEN);
    assert_string_equal(
        out.lines[2], "Authorization: AWS4-HMAC-SHA256 "
                      "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                      "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                      "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
    for (size_t i = 0; i < out.n_lines; i++) {
        assert_null(strstr(out.lines[i], "wJalrXUtnFEMI"));
    }
    assert_null(strstr(out.canonical.data, "wJalrXUtnFEMI"));

    /* Headers the caller passes under the signer's names are the signer's: skipped. */
    struct sl_sigv4_header h[] = {{"X-Amz-Date", 10, "19990101T000000Z", 16},
                                  {"Authorization", 13, "x", 1},
                                  {"HOST", 4, "evil", 4}};
    req.headers = h;
    req.n_headers = 3;
    struct sl_sigv4_out again;
    sl_sigv4_out_init(&again);
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &again), 0);
    assert_string_equal(again.authorization, out.authorization);
    sl_sigv4_out_fini(&again);
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(s);
}

/* S3 signs the path encoded once and wants X-Amz-Content-Sha256: the GET Object example of S3's
 * SigV4 documentation (examplebucket, Range: bytes=0-9, 20130524T000000Z). */
static void test_sigv4_s3_example(void **state)
{
    (void)state;
    struct sl_sigv4 *s;
    assert_int_equal(
        sl_sigv4_new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, &s),
        0);
    struct sl_sigv4_header h[] = {{"Range", 5, "bytes=0-9", 9}};
    struct sl_sigv4_req req = {.method = "GET",
                               .host = "examplebucket.s3.amazonaws.com",
                               .path = "/test.txt",
                               .headers = h,
                               .n_headers = 1,
                               .region = "us-east-1",
                               .service = "s3",
                               .content_sha256 = true,
                               .s3 = true};
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    assert_int_equal(sl_sigv4_sign(s, &req, 1369353600LL * 1000, &out), 0);
    assert_string_equal(out.canonical.data,
                        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                        "x-amz-content-sha256:"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                        "x-amz-date:20130524T000000Z\n\n"
                        "host;range;x-amz-content-sha256;x-amz-date\n"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(out.string_to_sign.data,
                        "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    assert_non_null(
        strstr(out.authorization,
               "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
    assert_int_equal(out.n_lines, 3);
    assert_string_equal(
        out.lines[1],
        "X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    /* S3 decodes and encodes once; other services encode what is sent once more. */
    req.path = "/a%3Ab/c d";
    assert_int_equal(sl_sigv4_sign(s, &req, 1369353600LL * 1000, &out), 0);
    assert_true(strncmp(out.canonical.data, "GET\n/a%3Ab/c%20d\n", 17) == 0);
    req.s3 = false;
    req.service = "lambda";
    assert_int_equal(sl_sigv4_sign(s, &req, 1369353600LL * 1000, &out), 0);
    assert_true(strncmp(out.canonical.data, "GET\n/a%253Ab/c%20d\n", 19) == 0);
    /* A precomputed payload hash is used as given. */
    req.payload_hash = "UNSIGNED-PAYLOAD";
    assert_int_equal(sl_sigv4_sign(s, &req, 1369353600LL * 1000, &out), 0);
    assert_string_equal(out.lines[1], "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD");
    assert_non_null(strstr(out.canonical.data, "\nUNSIGNED-PAYLOAD"));
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(s);
}

/* The key is derived once per (date, region, service): a new day, region or service derives a
 * new one, going back to a cached scope does not. */
static void test_sigv4_key_cache(void **state)
{
    (void)state;
    struct sl_sigv4 *s;
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, SUITE_SECRET, NULL, &s), 0);
    struct sl_sigv4_out out, first;
    sl_sigv4_out_init(&out);
    sl_sigv4_out_init(&first);
    struct sl_sigv4_req req = {.method = "GET",
                               .host = "example.amazonaws.com",
                               .region = "us-east-1",
                               .service = "service"};
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &first), 0);
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS + 3600 * 1000, &out), 0);
    assert_int_equal(sl_sigv4_key_derivations(s), 1);
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS + 24 * 3600 * 1000, &out), 0);
    assert_int_equal(sl_sigv4_key_derivations(s), 2);
    req.region = "eu-west-1";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    req.service = "kinesis";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    assert_int_equal(sl_sigv4_key_derivations(s), 4);
    req.region = "us-east-1";
    req.service = "service";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    assert_int_equal(sl_sigv4_key_derivations(s), 4);
    assert_string_equal(out.authorization, first.authorization);
    /* Five scopes in turn: the oldest is replaced, and still signs the same when derived again. */
    req.region = "ap-south-1";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    req.region = "sa-east-1";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    req.region = "us-east-1";
    assert_int_equal(sl_sigv4_sign(s, &req, SUITE_TIME_MS, &out), 0);
    assert_string_equal(out.authorization, first.authorization);
    sl_sigv4_out_fini(&out);
    sl_sigv4_out_fini(&first);
    sl_sigv4_free(s);
}

static void test_sigv4_refuses_what_cannot_be_signed(void **state)
{
    (void)state;
    struct sl_sigv4 *s;
    assert_int_equal(sl_sigv4_new("", SUITE_SECRET, NULL, &s), SL_EINVAL);
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, "", NULL, &s), SL_EINVAL);
    assert_int_equal(sl_sigv4_new(SUITE_KEY_ID, SUITE_SECRET, "", &s), 0);
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    struct sl_sigv4_req ok = {.method = "GET",
                              .host = "example.amazonaws.com",
                              .region = "us-east-1",
                              .service = "service"};
    assert_int_equal(sl_sigv4_sign(s, &ok, SUITE_TIME_MS, &out), 0);
    assert_int_equal(out.n_lines, 2); /* an empty token is no token */
    struct sl_sigv4_req bad = ok;
    bad.region = "US-EAST-1";
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    bad = ok;
    bad.service = "";
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    bad = ok;
    bad.method = "GE T";
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    assert_int_equal(sl_sigv4_sign(s, &ok, -1, &out), SL_EINVAL);
    assert_int_equal(sl_sigv4_sign(s, &ok, 253402300800LL * 1000, &out), SL_EINVAL);
    struct sl_sigv4_header crlf = {"X-A", 3, "a\r\nX-B: b", 9};
    bad = ok;
    bad.headers = &crlf;
    bad.n_headers = 1;
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    struct sl_sigv4_header sp = {"X A", 3, "a", 1};
    bad.headers = &sp;
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    bad.n_headers = SL_SIGV4_MAX_HEADERS + 1;
    assert_int_equal(sl_sigv4_sign(s, &bad, SUITE_TIME_MS, &out), SL_EINVAL);
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(s);
    sl_sigv4_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigv4_aws_test_suite),
        cmocka_unit_test(test_sigv4_header_lines_with_session_token),
        cmocka_unit_test(test_sigv4_s3_example),
        cmocka_unit_test(test_sigv4_key_cache),
        cmocka_unit_test(test_sigv4_refuses_what_cannot_be_signed),
    };
    return cmocka_run_group_tests_name("sigv4", tests, NULL, NULL);
}
