// Generated from pulsar-api.proto (protobufjs reflection JSON); do not edit by hand.
// Regenerate: TXKIT_UPDATE_PROTO=1 npx vitest run test/pulsar/protocol-schema.test.ts
import type { INamespace } from 'protobufjs/light.js';

const schema = {
  "nested": {
    "pulsar": {
      "nested": {
        "proto": {
          "nested": {
            "MessageIdData": {
              "edition": "proto2",
              "fields": {
                "ledgerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1
                },
                "entryId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2
                },
                "partition": {
                  "type": "int32",
                  "id": 3,
                  "options": {
                    "default": -1
                  }
                },
                "batchIndex": {
                  "type": "int32",
                  "id": 4,
                  "protoName": "batch_index",
                  "options": {
                    "default": -1
                  }
                },
                "ackSet": {
                  "rule": "repeated",
                  "type": "int64",
                  "id": 5,
                  "protoName": "ack_set"
                },
                "batchSize": {
                  "type": "int32",
                  "id": 6,
                  "protoName": "batch_size"
                }
              }
            },
            "KeyValue": {
              "edition": "proto2",
              "fields": {
                "key": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "value": {
                  "rule": "required",
                  "type": "string",
                  "id": 2
                }
              }
            },
            "CompressionType": {
              "edition": "proto2",
              "values": {
                "NONE": 0,
                "LZ4": 1,
                "ZLIB": 2,
                "ZSTD": 3,
                "SNAPPY": 4
              }
            },
            "MessageMetadata": {
              "edition": "proto2",
              "fields": {
                "producerName": {
                  "rule": "required",
                  "type": "string",
                  "id": 1,
                  "protoName": "producer_name"
                },
                "sequenceId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "sequence_id"
                },
                "publishTime": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 3,
                  "protoName": "publish_time"
                },
                "properties": {
                  "rule": "repeated",
                  "type": "KeyValue",
                  "id": 4
                },
                "partitionKey": {
                  "type": "string",
                  "id": 6,
                  "protoName": "partition_key"
                },
                "compression": {
                  "type": "int32",
                  "id": 8,
                  "options": {
                    "default": 0
                  }
                },
                "uncompressedSize": {
                  "type": "uint32",
                  "id": 9,
                  "protoName": "uncompressed_size",
                  "options": {
                    "default": 0
                  }
                },
                "numMessagesInBatch": {
                  "type": "int32",
                  "id": 11,
                  "protoName": "num_messages_in_batch",
                  "options": {
                    "default": 1
                  }
                },
                "eventTime": {
                  "type": "uint64",
                  "id": 12,
                  "protoName": "event_time",
                  "options": {
                    "default": 0
                  }
                },
                "encryptionKeys": {
                  "rule": "repeated",
                  "type": "EncryptionKeys",
                  "id": 13,
                  "protoName": "encryption_keys"
                },
                "partitionKeyB64Encoded": {
                  "type": "bool",
                  "id": 17,
                  "protoName": "partition_key_b64_encoded",
                  "options": {
                    "default": false
                  }
                },
                "orderingKey": {
                  "type": "bytes",
                  "id": 18,
                  "protoName": "ordering_key"
                },
                "markerType": {
                  "type": "int32",
                  "id": 20,
                  "protoName": "marker_type"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 22,
                  "protoName": "txnid_least_bits"
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 23,
                  "protoName": "txnid_most_bits"
                },
                "highestSequenceId": {
                  "type": "uint64",
                  "id": 24,
                  "protoName": "highest_sequence_id",
                  "options": {
                    "default": 0
                  }
                },
                "nullValue": {
                  "type": "bool",
                  "id": 25,
                  "protoName": "null_value",
                  "options": {
                    "default": false
                  }
                },
                "uuid": {
                  "type": "string",
                  "id": 26
                },
                "numChunksFromMsg": {
                  "type": "int32",
                  "id": 27,
                  "protoName": "num_chunks_from_msg"
                },
                "nullPartitionKey": {
                  "type": "bool",
                  "id": 30,
                  "protoName": "null_partition_key",
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "EncryptionKeys": {
              "edition": "proto2",
              "fields": {
                "key": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "value": {
                  "rule": "required",
                  "type": "bytes",
                  "id": 2
                }
              }
            },
            "SingleMessageMetadata": {
              "edition": "proto2",
              "fields": {
                "properties": {
                  "rule": "repeated",
                  "type": "KeyValue",
                  "id": 1
                },
                "partitionKey": {
                  "type": "string",
                  "id": 2,
                  "protoName": "partition_key"
                },
                "payloadSize": {
                  "rule": "required",
                  "type": "int32",
                  "id": 3,
                  "protoName": "payload_size"
                },
                "compactedOut": {
                  "type": "bool",
                  "id": 4,
                  "protoName": "compacted_out",
                  "options": {
                    "default": false
                  }
                },
                "eventTime": {
                  "type": "uint64",
                  "id": 5,
                  "protoName": "event_time",
                  "options": {
                    "default": 0
                  }
                },
                "partitionKeyB64Encoded": {
                  "type": "bool",
                  "id": 6,
                  "protoName": "partition_key_b64_encoded",
                  "options": {
                    "default": false
                  }
                },
                "orderingKey": {
                  "type": "bytes",
                  "id": 7,
                  "protoName": "ordering_key"
                },
                "sequenceId": {
                  "type": "uint64",
                  "id": 8,
                  "protoName": "sequence_id"
                },
                "nullValue": {
                  "type": "bool",
                  "id": 9,
                  "protoName": "null_value",
                  "options": {
                    "default": false
                  }
                },
                "nullPartitionKey": {
                  "type": "bool",
                  "id": 10,
                  "protoName": "null_partition_key",
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "ServerError": {
              "edition": "proto2",
              "values": {
                "UnknownError": 0,
                "MetadataError": 1,
                "PersistenceError": 2,
                "AuthenticationError": 3,
                "AuthorizationError": 4,
                "ConsumerBusy": 5,
                "ServiceNotReady": 6,
                "ProducerBlockedQuotaExceededError": 7,
                "ProducerBlockedQuotaExceededException": 8,
                "ChecksumError": 9,
                "UnsupportedVersionError": 10,
                "TopicNotFound": 11,
                "SubscriptionNotFound": 12,
                "ConsumerNotFound": 13,
                "TooManyRequests": 14,
                "TopicTerminatedError": 15,
                "ProducerBusy": 16,
                "InvalidTopicName": 17,
                "IncompatibleSchema": 18,
                "ConsumerAssignError": 19,
                "TransactionCoordinatorNotFound": 20,
                "InvalidTxnStatus": 21,
                "NotAllowedError": 22,
                "TransactionConflict": 23,
                "TransactionNotFound": 24,
                "ProducerFenced": 25
              }
            },
            "FeatureFlags": {
              "edition": "proto2",
              "fields": {
                "supportsAuthRefresh": {
                  "type": "bool",
                  "id": 1,
                  "protoName": "supports_auth_refresh",
                  "options": {
                    "default": false
                  }
                },
                "supportsBrokerEntryMetadata": {
                  "type": "bool",
                  "id": 2,
                  "protoName": "supports_broker_entry_metadata",
                  "options": {
                    "default": false
                  }
                },
                "supportsPartialProducer": {
                  "type": "bool",
                  "id": 3,
                  "protoName": "supports_partial_producer",
                  "options": {
                    "default": false
                  }
                },
                "supportsTopicWatchers": {
                  "type": "bool",
                  "id": 4,
                  "protoName": "supports_topic_watchers",
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "CommandConnect": {
              "edition": "proto2",
              "fields": {
                "clientVersion": {
                  "rule": "required",
                  "type": "string",
                  "id": 1,
                  "protoName": "client_version"
                },
                "authMethodName": {
                  "type": "string",
                  "id": 5,
                  "protoName": "auth_method_name"
                },
                "authData": {
                  "type": "bytes",
                  "id": 3,
                  "protoName": "auth_data"
                },
                "protocolVersion": {
                  "type": "int32",
                  "id": 4,
                  "protoName": "protocol_version",
                  "options": {
                    "default": 0
                  }
                },
                "proxyToBrokerUrl": {
                  "type": "string",
                  "id": 6,
                  "protoName": "proxy_to_broker_url"
                },
                "featureFlags": {
                  "type": "FeatureFlags",
                  "id": 10,
                  "protoName": "feature_flags"
                }
              }
            },
            "AuthData": {
              "edition": "proto2",
              "fields": {
                "authMethodName": {
                  "type": "string",
                  "id": 1,
                  "protoName": "auth_method_name"
                },
                "authData": {
                  "type": "bytes",
                  "id": 2,
                  "protoName": "auth_data"
                }
              }
            },
            "CommandAuthChallenge": {
              "edition": "proto2",
              "fields": {
                "serverVersion": {
                  "type": "string",
                  "id": 1,
                  "protoName": "server_version"
                },
                "challenge": {
                  "type": "AuthData",
                  "id": 2
                },
                "protocolVersion": {
                  "type": "int32",
                  "id": 3,
                  "protoName": "protocol_version",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandAuthResponse": {
              "edition": "proto2",
              "fields": {
                "clientVersion": {
                  "type": "string",
                  "id": 1,
                  "protoName": "client_version"
                },
                "response": {
                  "type": "AuthData",
                  "id": 2
                },
                "protocolVersion": {
                  "type": "int32",
                  "id": 3,
                  "protoName": "protocol_version",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandConnected": {
              "edition": "proto2",
              "fields": {
                "serverVersion": {
                  "rule": "required",
                  "type": "string",
                  "id": 1,
                  "protoName": "server_version"
                },
                "protocolVersion": {
                  "type": "int32",
                  "id": 2,
                  "protoName": "protocol_version",
                  "options": {
                    "default": 0
                  }
                },
                "maxMessageSize": {
                  "type": "int32",
                  "id": 3,
                  "protoName": "max_message_size"
                },
                "featureFlags": {
                  "type": "FeatureFlags",
                  "id": 4,
                  "protoName": "feature_flags"
                }
              }
            },
            "CommandSubscribe": {
              "edition": "proto2",
              "fields": {
                "topic": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "subscription": {
                  "rule": "required",
                  "type": "string",
                  "id": 2
                },
                "subType": {
                  "rule": "required",
                  "type": "SubType",
                  "id": 3
                },
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 4,
                  "protoName": "consumer_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 5,
                  "protoName": "request_id"
                },
                "consumerName": {
                  "type": "string",
                  "id": 6,
                  "protoName": "consumer_name"
                },
                "durable": {
                  "type": "bool",
                  "id": 8,
                  "options": {
                    "default": true
                  }
                },
                "startMessageId": {
                  "type": "MessageIdData",
                  "id": 9,
                  "protoName": "start_message_id"
                },
                "initialPosition": {
                  "type": "InitialPosition",
                  "id": 13,
                  "options": {
                    "default": "Latest"
                  }
                },
                "forceTopicCreation": {
                  "type": "bool",
                  "id": 15,
                  "protoName": "force_topic_creation",
                  "options": {
                    "default": true
                  }
                },
                "consumerEpoch": {
                  "type": "uint64",
                  "id": 19,
                  "protoName": "consumer_epoch"
                }
              },
              "nested": {
                "SubType": {
                  "values": {
                    "Exclusive": 0,
                    "Shared": 1,
                    "Failover": 2,
                    "Key_Shared": 3
                  }
                },
                "InitialPosition": {
                  "values": {
                    "Latest": 0,
                    "Earliest": 1
                  }
                }
              }
            },
            "CommandPartitionedTopicMetadata": {
              "edition": "proto2",
              "fields": {
                "topic": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                }
              }
            },
            "CommandPartitionedTopicMetadataResponse": {
              "edition": "proto2",
              "fields": {
                "partitions": {
                  "type": "uint32",
                  "id": 1
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                },
                "response": {
                  "type": "int32",
                  "id": 3
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                }
              },
              "nested": {
                "LookupType": {
                  "values": {
                    "Success": 0,
                    "Failed": 1
                  }
                }
              }
            },
            "CommandLookupTopic": {
              "edition": "proto2",
              "fields": {
                "topic": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                },
                "authoritative": {
                  "type": "bool",
                  "id": 3,
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "CommandLookupTopicResponse": {
              "edition": "proto2",
              "fields": {
                "brokerServiceUrl": {
                  "type": "string",
                  "id": 1
                },
                "brokerServiceUrlTls": {
                  "type": "string",
                  "id": 2
                },
                "response": {
                  "type": "int32",
                  "id": 3
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 4,
                  "protoName": "request_id"
                },
                "authoritative": {
                  "type": "bool",
                  "id": 5,
                  "options": {
                    "default": false
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 6
                },
                "message": {
                  "type": "string",
                  "id": 7
                },
                "proxyThroughServiceUrl": {
                  "type": "bool",
                  "id": 8,
                  "protoName": "proxy_through_service_url",
                  "options": {
                    "default": false
                  }
                }
              },
              "nested": {
                "LookupType": {
                  "values": {
                    "Redirect": 0,
                    "Connect": 1,
                    "Failed": 2
                  }
                }
              }
            },
            "CommandProducer": {
              "edition": "proto2",
              "fields": {
                "topic": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "producerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "producer_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 3,
                  "protoName": "request_id"
                },
                "producerName": {
                  "type": "string",
                  "id": 4,
                  "protoName": "producer_name"
                },
                "epoch": {
                  "type": "uint64",
                  "id": 8,
                  "options": {
                    "default": 0
                  }
                },
                "userProvidedProducerName": {
                  "type": "bool",
                  "id": 9,
                  "protoName": "user_provided_producer_name",
                  "options": {
                    "default": true
                  }
                },
                "txnEnabled": {
                  "type": "bool",
                  "id": 12,
                  "protoName": "txn_enabled",
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "CommandProducerSuccess": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "producerName": {
                  "rule": "required",
                  "type": "string",
                  "id": 2,
                  "protoName": "producer_name"
                },
                "lastSequenceId": {
                  "type": "int64",
                  "id": 3,
                  "protoName": "last_sequence_id",
                  "options": {
                    "default": -1
                  }
                },
                "producerReady": {
                  "type": "bool",
                  "id": 6,
                  "protoName": "producer_ready",
                  "options": {
                    "default": true
                  }
                }
              }
            },
            "CommandSend": {
              "edition": "proto2",
              "fields": {
                "producerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "producer_id"
                },
                "sequenceId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "sequence_id"
                },
                "numMessages": {
                  "type": "int32",
                  "id": 3,
                  "protoName": "num_messages",
                  "options": {
                    "default": 1
                  }
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 4,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 5,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "highestSequenceId": {
                  "type": "uint64",
                  "id": 6,
                  "protoName": "highest_sequence_id",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandSendReceipt": {
              "edition": "proto2",
              "fields": {
                "producerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "producer_id"
                },
                "sequenceId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "sequence_id"
                },
                "messageId": {
                  "type": "MessageIdData",
                  "id": 3,
                  "protoName": "message_id"
                },
                "highestSequenceId": {
                  "type": "uint64",
                  "id": 4,
                  "protoName": "highest_sequence_id",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandSendError": {
              "edition": "proto2",
              "fields": {
                "producerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "producer_id"
                },
                "sequenceId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "sequence_id"
                },
                "error": {
                  "rule": "required",
                  "type": "int32",
                  "id": 3
                },
                "message": {
                  "rule": "required",
                  "type": "string",
                  "id": 4
                }
              }
            },
            "CommandMessage": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "messageId": {
                  "rule": "required",
                  "type": "MessageIdData",
                  "id": 2,
                  "protoName": "message_id"
                },
                "redeliveryCount": {
                  "type": "uint32",
                  "id": 3,
                  "protoName": "redelivery_count",
                  "options": {
                    "default": 0
                  }
                },
                "ackSet": {
                  "rule": "repeated",
                  "type": "int64",
                  "id": 4,
                  "protoName": "ack_set"
                },
                "consumerEpoch": {
                  "type": "uint64",
                  "id": 5,
                  "protoName": "consumer_epoch"
                }
              }
            },
            "CommandAck": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "ackType": {
                  "rule": "required",
                  "type": "AckType",
                  "id": 2,
                  "protoName": "ack_type"
                },
                "messageId": {
                  "rule": "repeated",
                  "type": "MessageIdData",
                  "id": 3,
                  "protoName": "message_id"
                },
                "validationError": {
                  "type": "ValidationError",
                  "id": 4,
                  "protoName": "validation_error"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 6,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 7,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "requestId": {
                  "type": "uint64",
                  "id": 8,
                  "protoName": "request_id"
                }
              },
              "nested": {
                "AckType": {
                  "values": {
                    "Individual": 0,
                    "Cumulative": 1
                  }
                },
                "ValidationError": {
                  "values": {
                    "UncompressedSizeCorruption": 0,
                    "DecompressionError": 1,
                    "ChecksumMismatch": 2,
                    "BatchDeSerializeError": 3,
                    "DecryptionError": 4
                  }
                }
              }
            },
            "CommandAckResponse": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                },
                "requestId": {
                  "type": "uint64",
                  "id": 6,
                  "protoName": "request_id"
                }
              }
            },
            "CommandActiveConsumerChange": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "isActive": {
                  "type": "bool",
                  "id": 2,
                  "protoName": "is_active",
                  "options": {
                    "default": false
                  }
                }
              }
            },
            "CommandFlow": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "messagePermits": {
                  "rule": "required",
                  "type": "uint32",
                  "id": 2
                }
              }
            },
            "CommandReachedEndOfTopic": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                }
              }
            },
            "CommandCloseProducer": {
              "edition": "proto2",
              "fields": {
                "producerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "producer_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                }
              }
            },
            "CommandCloseConsumer": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                }
              }
            },
            "CommandRedeliverUnacknowledgedMessages": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "messageIds": {
                  "rule": "repeated",
                  "type": "MessageIdData",
                  "id": 2,
                  "protoName": "message_ids"
                },
                "consumerEpoch": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "consumer_epoch"
                }
              }
            },
            "CommandGetLastMessageId": {
              "edition": "proto2",
              "fields": {
                "consumerId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "consumer_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                }
              }
            },
            "CommandGetLastMessageIdResponse": {
              "edition": "proto2",
              "fields": {
                "lastMessageId": {
                  "rule": "required",
                  "type": "MessageIdData",
                  "id": 1,
                  "protoName": "last_message_id"
                },
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "request_id"
                },
                "consumerMarkDeletePosition": {
                  "type": "MessageIdData",
                  "id": 3,
                  "protoName": "consumer_mark_delete_position"
                }
              }
            },
            "CommandSuccess": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                }
              }
            },
            "CommandError": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "error": {
                  "rule": "required",
                  "type": "int32",
                  "id": 2
                },
                "message": {
                  "rule": "required",
                  "type": "string",
                  "id": 3
                }
              }
            },
            "CommandPing": {
              "edition": "proto2",
              "fields": {}
            },
            "CommandPong": {
              "edition": "proto2",
              "fields": {}
            },
            "TxnAction": {
              "edition": "proto2",
              "values": {
                "COMMIT": 0,
                "ABORT": 1
              }
            },
            "CommandTcClientConnectRequest": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "tcId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 2,
                  "protoName": "tc_id",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandTcClientConnectResponse": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "error": {
                  "type": "int32",
                  "id": 2
                },
                "message": {
                  "type": "string",
                  "id": 3
                }
              }
            },
            "CommandNewTxn": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnTtlSeconds": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txn_ttl_seconds",
                  "options": {
                    "default": 0
                  }
                },
                "tcId": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "tc_id",
                  "options": {
                    "default": 0
                  }
                }
              }
            },
            "CommandNewTxnResponse": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                }
              }
            },
            "CommandAddPartitionToTxn": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "partitions": {
                  "rule": "repeated",
                  "type": "string",
                  "id": 4
                }
              }
            },
            "CommandAddPartitionToTxnResponse": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                }
              }
            },
            "Subscription": {
              "edition": "proto2",
              "fields": {
                "topic": {
                  "rule": "required",
                  "type": "string",
                  "id": 1
                },
                "subscription": {
                  "rule": "required",
                  "type": "string",
                  "id": 2
                }
              }
            },
            "CommandAddSubscriptionToTxn": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "subscription": {
                  "rule": "repeated",
                  "type": "Subscription",
                  "id": 4
                }
              }
            },
            "CommandAddSubscriptionToTxnResponse": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                }
              }
            },
            "CommandEndTxn": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnAction": {
                  "type": "TxnAction",
                  "id": 4,
                  "protoName": "txn_action"
                }
              }
            },
            "CommandEndTxnResponse": {
              "edition": "proto2",
              "fields": {
                "requestId": {
                  "rule": "required",
                  "type": "uint64",
                  "id": 1,
                  "protoName": "request_id"
                },
                "txnidLeastBits": {
                  "type": "uint64",
                  "id": 2,
                  "protoName": "txnid_least_bits",
                  "options": {
                    "default": 0
                  }
                },
                "txnidMostBits": {
                  "type": "uint64",
                  "id": 3,
                  "protoName": "txnid_most_bits",
                  "options": {
                    "default": 0
                  }
                },
                "error": {
                  "type": "int32",
                  "id": 4
                },
                "message": {
                  "type": "string",
                  "id": 5
                }
              }
            },
            "BaseCommand": {
              "edition": "proto2",
              "fields": {
                "type": {
                  "rule": "required",
                  "type": "int32",
                  "id": 1
                },
                "connect": {
                  "type": "CommandConnect",
                  "id": 2
                },
                "connected": {
                  "type": "CommandConnected",
                  "id": 3
                },
                "subscribe": {
                  "type": "CommandSubscribe",
                  "id": 4
                },
                "producer": {
                  "type": "CommandProducer",
                  "id": 5
                },
                "send": {
                  "type": "CommandSend",
                  "id": 6
                },
                "sendReceipt": {
                  "type": "CommandSendReceipt",
                  "id": 7,
                  "protoName": "send_receipt"
                },
                "sendError": {
                  "type": "CommandSendError",
                  "id": 8,
                  "protoName": "send_error"
                },
                "message": {
                  "type": "CommandMessage",
                  "id": 9
                },
                "ack": {
                  "type": "CommandAck",
                  "id": 10
                },
                "flow": {
                  "type": "CommandFlow",
                  "id": 11
                },
                "success": {
                  "type": "CommandSuccess",
                  "id": 13
                },
                "error": {
                  "type": "CommandError",
                  "id": 14
                },
                "closeProducer": {
                  "type": "CommandCloseProducer",
                  "id": 15,
                  "protoName": "close_producer"
                },
                "closeConsumer": {
                  "type": "CommandCloseConsumer",
                  "id": 16,
                  "protoName": "close_consumer"
                },
                "producerSuccess": {
                  "type": "CommandProducerSuccess",
                  "id": 17,
                  "protoName": "producer_success"
                },
                "ping": {
                  "type": "CommandPing",
                  "id": 18
                },
                "pong": {
                  "type": "CommandPong",
                  "id": 19
                },
                "redeliverUnacknowledgedMessages": {
                  "type": "CommandRedeliverUnacknowledgedMessages",
                  "id": 20
                },
                "partitionMetadata": {
                  "type": "CommandPartitionedTopicMetadata",
                  "id": 21
                },
                "partitionMetadataResponse": {
                  "type": "CommandPartitionedTopicMetadataResponse",
                  "id": 22
                },
                "lookupTopic": {
                  "type": "CommandLookupTopic",
                  "id": 23
                },
                "lookupTopicResponse": {
                  "type": "CommandLookupTopicResponse",
                  "id": 24
                },
                "reachedEndOfTopic": {
                  "type": "CommandReachedEndOfTopic",
                  "id": 27
                },
                "getLastMessageId": {
                  "type": "CommandGetLastMessageId",
                  "id": 29
                },
                "getLastMessageIdResponse": {
                  "type": "CommandGetLastMessageIdResponse",
                  "id": 30
                },
                "activeConsumerChange": {
                  "type": "CommandActiveConsumerChange",
                  "id": 31,
                  "protoName": "active_consumer_change"
                },
                "authChallenge": {
                  "type": "CommandAuthChallenge",
                  "id": 36
                },
                "authResponse": {
                  "type": "CommandAuthResponse",
                  "id": 37
                },
                "ackResponse": {
                  "type": "CommandAckResponse",
                  "id": 38
                },
                "newTxn": {
                  "type": "CommandNewTxn",
                  "id": 50
                },
                "newTxnResponse": {
                  "type": "CommandNewTxnResponse",
                  "id": 51
                },
                "addPartitionToTxn": {
                  "type": "CommandAddPartitionToTxn",
                  "id": 52
                },
                "addPartitionToTxnResponse": {
                  "type": "CommandAddPartitionToTxnResponse",
                  "id": 53
                },
                "addSubscriptionToTxn": {
                  "type": "CommandAddSubscriptionToTxn",
                  "id": 54
                },
                "addSubscriptionToTxnResponse": {
                  "type": "CommandAddSubscriptionToTxnResponse",
                  "id": 55
                },
                "endTxn": {
                  "type": "CommandEndTxn",
                  "id": 56
                },
                "endTxnResponse": {
                  "type": "CommandEndTxnResponse",
                  "id": 57
                },
                "tcClientConnectRequest": {
                  "type": "CommandTcClientConnectRequest",
                  "id": 62
                },
                "tcClientConnectResponse": {
                  "type": "CommandTcClientConnectResponse",
                  "id": 63
                }
              },
              "nested": {
                "Type": {
                  "values": {
                    "CONNECT": 2,
                    "CONNECTED": 3,
                    "SUBSCRIBE": 4,
                    "PRODUCER": 5,
                    "SEND": 6,
                    "SEND_RECEIPT": 7,
                    "SEND_ERROR": 8,
                    "MESSAGE": 9,
                    "ACK": 10,
                    "FLOW": 11,
                    "UNSUBSCRIBE": 12,
                    "SUCCESS": 13,
                    "ERROR": 14,
                    "CLOSE_PRODUCER": 15,
                    "CLOSE_CONSUMER": 16,
                    "PRODUCER_SUCCESS": 17,
                    "PING": 18,
                    "PONG": 19,
                    "REDELIVER_UNACKNOWLEDGED_MESSAGES": 20,
                    "PARTITIONED_METADATA": 21,
                    "PARTITIONED_METADATA_RESPONSE": 22,
                    "LOOKUP": 23,
                    "LOOKUP_RESPONSE": 24,
                    "CONSUMER_STATS": 25,
                    "CONSUMER_STATS_RESPONSE": 26,
                    "REACHED_END_OF_TOPIC": 27,
                    "SEEK": 28,
                    "GET_LAST_MESSAGE_ID": 29,
                    "GET_LAST_MESSAGE_ID_RESPONSE": 30,
                    "ACTIVE_CONSUMER_CHANGE": 31,
                    "GET_TOPICS_OF_NAMESPACE": 32,
                    "GET_TOPICS_OF_NAMESPACE_RESPONSE": 33,
                    "GET_SCHEMA": 34,
                    "GET_SCHEMA_RESPONSE": 35,
                    "AUTH_CHALLENGE": 36,
                    "AUTH_RESPONSE": 37,
                    "ACK_RESPONSE": 38,
                    "GET_OR_CREATE_SCHEMA": 39,
                    "GET_OR_CREATE_SCHEMA_RESPONSE": 40,
                    "NEW_TXN": 50,
                    "NEW_TXN_RESPONSE": 51,
                    "ADD_PARTITION_TO_TXN": 52,
                    "ADD_PARTITION_TO_TXN_RESPONSE": 53,
                    "ADD_SUBSCRIPTION_TO_TXN": 54,
                    "ADD_SUBSCRIPTION_TO_TXN_RESPONSE": 55,
                    "END_TXN": 56,
                    "END_TXN_RESPONSE": 57,
                    "END_TXN_ON_PARTITION": 58,
                    "END_TXN_ON_PARTITION_RESPONSE": 59,
                    "END_TXN_ON_SUBSCRIPTION": 60,
                    "END_TXN_ON_SUBSCRIPTION_RESPONSE": 61,
                    "TC_CLIENT_CONNECT_REQUEST": 62,
                    "TC_CLIENT_CONNECT_RESPONSE": 63,
                    "WATCH_TOPIC_LIST": 64,
                    "WATCH_TOPIC_LIST_SUCCESS": 65,
                    "WATCH_TOPIC_UPDATE": 66,
                    "WATCH_TOPIC_LIST_CLOSE": 67,
                    "TOPIC_MIGRATED": 68
                  }
                }
              }
            }
          }
        }
      }
    }
  }
};

export const PULSAR_API_SCHEMA: INamespace = schema;
