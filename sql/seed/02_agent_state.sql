-- Configs, runtime states, capabilities and metrics of the four demo agents.

INSERT INTO agent_configs (id, agent_id, config_key, config_value, config_type, description, is_sensitive) VALUES
    ('1c000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'cost_threshold_usd', '1000', 'number', 'Minimum monthly cost to trigger optimization', false),
    ('1c000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'savings_threshold_percent', '15', 'number', 'Minimum savings percentage to recommend', false),
    ('1c000000-0000-4000-8000-000000000003', 'a1000000-0000-4000-8000-000000000001', 'check_interval_minutes', '60', 'number', 'How often to check for cost anomalies', false),
    ('1c000000-0000-4000-8000-000000000004', 'a1000000-0000-4000-8000-000000000002', 'latency_p95_threshold_ms', '500', 'number', 'P95 latency threshold for alerts', false),
    ('1c000000-0000-4000-8000-000000000005', 'a1000000-0000-4000-8000-000000000002', 'throughput_threshold_rps', '100', 'number', 'Minimum throughput (requests/sec)', false),
    ('1c000000-0000-4000-8000-000000000006', 'a1000000-0000-4000-8000-000000000002', 'kv_cache_size_gb', '32', 'number', 'KV cache size in GB', false),
    ('1c000000-0000-4000-8000-000000000007', 'a1000000-0000-4000-8000-000000000003', 'gpu_utilization_target', '75', 'number', 'Target GPU utilization percentage', false),
    ('1c000000-0000-4000-8000-000000000008', 'a1000000-0000-4000-8000-000000000003', 'scale_up_threshold', '85', 'number', 'GPU utilization % to trigger scale-up', false),
    ('1c000000-0000-4000-8000-000000000009', 'a1000000-0000-4000-8000-000000000003', 'scale_down_threshold', '40', 'number', 'GPU utilization % to trigger scale-down', false),
    ('1c000000-0000-4000-8000-000000000010', 'a1000000-0000-4000-8000-000000000004', 'quality_score_threshold', '0.85', 'number', 'Minimum quality score (0-1)', false),
    ('1c000000-0000-4000-8000-000000000011', 'a1000000-0000-4000-8000-000000000004', 'hallucination_threshold', '0.05', 'number', 'Maximum hallucination rate', false),
    ('1c000000-0000-4000-8000-000000000012', 'a1000000-0000-4000-8000-000000000004', 'regression_check_interval', '15', 'number', 'Minutes between regression checks', false)
ON CONFLICT DO NOTHING;

INSERT INTO agent_states (id, agent_id, status, current_workflow, workflow_data, resource_locks,
                          error_count, last_error, last_heartbeat) VALUES
    -- cost agent: analysing
    ('15000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'active', 'cost_analysis',
     jsonb_build_object('customer_id', 'c1000000-0000-4000-8000-000000000001',
                        'analysis_started', now(), 'metrics_collected', 150, 'savings_identified', 45000),
     '{gpu_cluster_1,billing_data}', 0, NULL, now()),
    -- performance agent: idle but healthy
    ('15000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000002', 'idle', NULL,
     '{}', '{}', 0, NULL, now()),
    -- resource agent: scaling, recovered from one transient error
    ('15000000-0000-4000-8000-000000000003', 'a1000000-0000-4000-8000-000000000003', 'active', 'gpu_scaling',
     jsonb_build_object('customer_id', 'c1000000-0000-4000-8000-000000000001', 'current_gpus', 8,
                        'target_gpus', 12, 'scale_reason', 'high_utilization', 'started_at', now()),
     '{k8s_cluster,gpu_pool}', 1,
     jsonb_build_object('timestamp', now() - interval '2 hours', 'error', 'Transient network timeout',
                        'recovered', true),
     now()),
    -- application agent: in error after a quality threshold breach
    ('15000000-0000-4000-8000-000000000004', 'a1000000-0000-4000-8000-000000000004', 'error', 'quality_check',
     jsonb_build_object('customer_id', 'c1000000-0000-4000-8000-000000000001', 'check_id', 'qc_20251019_001',
                        'samples_checked', 50, 'failures', 3),
     '{quality_db}', 3,
     jsonb_build_object('timestamp', now() - interval '5 minutes',
                        'error', 'Quality threshold breach: score=0.82 (threshold=0.85)', 'severity', 'high'),
     now() - interval '5 minutes')
ON CONFLICT DO NOTHING;

INSERT INTO agent_capabilities (id, agent_id, capability_name, capability_version, description, parameters, is_enabled) VALUES
    ('1a000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'gpu_cost_analysis', '1.2.0', 'Analyze GPU cluster costs and identify savings',
     '{"supported_providers": ["aws", "gcp", "azure"], "gpu_types": ["H100", "A100", "V100"], "analysis_depth": "detailed"}', true),
    ('1a000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'storage_optimization', '1.0.0', 'Optimize storage tiering and costs',
     '{"storage_types": ["s3", "ebs", "gcs"], "tiering_policies": ["hot", "warm", "cold"]}', true),
    ('1a000000-0000-4000-8000-000000000003', 'a1000000-0000-4000-8000-000000000001', 'spot_instance_recommendation', '0.9.0', 'Recommend spot instance usage (beta)',
     '{"max_spot_percentage": 70, "fallback_strategy": "on_demand"}', false),
    ('1a000000-0000-4000-8000-000000000004', 'a1000000-0000-4000-8000-000000000002', 'kv_cache_tuning', '2.1.0', 'Optimize KV cache settings for vLLM/TGI',
     '{"supported_engines": ["vllm", "tgi", "sglang"], "cache_strategies": ["static", "dynamic", "adaptive"]}', true),
    ('1a000000-0000-4000-8000-000000000005', 'a1000000-0000-4000-8000-000000000002', 'batch_optimization', '1.5.0', 'Optimize batch sizes and continuous batching',
     '{"min_batch_size": 4, "max_batch_size": 128, "dynamic_batching": true}', true),
    ('1a000000-0000-4000-8000-000000000006', 'a1000000-0000-4000-8000-000000000002', 'quantization_testing', '1.0.0', 'Test FP8/INT8 quantization strategies',
     '{"quantization_formats": ["fp8", "int8", "int4"], "quality_validation": true}', true),
    ('1a000000-0000-4000-8000-000000000007', 'a1000000-0000-4000-8000-000000000003', 'auto_scaling', '2.0.0', 'Auto-scale GPU clusters based on demand',
     '{"scaling_triggers": ["utilization", "queue_depth", "latency"], "cooldown_minutes": 10, "max_scale_factor": 3}', true),
    ('1a000000-0000-4000-8000-000000000008', 'a1000000-0000-4000-8000-000000000003', 'load_balancing', '1.3.0', 'Balance workloads across GPU clusters',
     '{"strategy": "least_loaded", "affinity_rules": true}', true),
    ('1a000000-0000-4000-8000-000000000009', 'a1000000-0000-4000-8000-000000000004', 'quality_monitoring', '1.4.0', 'Monitor LLM output quality in real-time',
     '{"metrics": ["coherence", "relevance", "factuality"], "sampling_rate": 0.1, "alert_threshold": 0.85}', true),
    ('1a000000-0000-4000-8000-000000000010', 'a1000000-0000-4000-8000-000000000004', 'regression_detection', '1.1.0', 'Detect quality regressions after changes',
     '{"baseline_samples": 100, "comparison_samples": 100, "significance_level": 0.05}', true),
    ('1a000000-0000-4000-8000-000000000011', 'a1000000-0000-4000-8000-000000000004', 'hallucination_detection', '0.8.0', 'Detect hallucinations in LLM outputs (experimental)',
     '{"detection_methods": ["fact_checking", "consistency"], "confidence_threshold": 0.7}', false)
ON CONFLICT DO NOTHING;

-- agent_metrics is partitioned by collection_timestamp, so its key is (id, collection_timestamp):
-- a second run (a new now()) is told apart by id alone
INSERT INTO agent_metrics (id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata)
SELECT v.id::uuid, v.agent_id::uuid, v.metric_name, v.metric_type::metric_type, v.metric_value, v.metric_unit,
       v.collection_timestamp, v.metadata::jsonb
  FROM (VALUES
    ('1e000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'total_savings_identified_usd', 'counter', 125000.00, 'usd', now(),
     '{"period": "last_30_days", "customers_analyzed": 5, "recommendations_generated": 12}'),
    ('1e000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'average_savings_percent', 'gauge', 42.5, 'percent', now(),
     '{"min": 28.0, "max": 67.0, "median": 41.0}'),
    ('1e000000-0000-4000-8000-000000000003', 'a1000000-0000-4000-8000-000000000001', 'analysis_execution_time_seconds', 'summary', 145.3, 'seconds', now(),
     '{"p50": 120.0, "p95": 180.0, "p99": 220.0}'),
    ('1e000000-0000-4000-8000-000000000004', 'a1000000-0000-4000-8000-000000000002', 'latency_improvement_percent', 'gauge', 65.0, 'percent', now(),
     '{"before_p95_ms": 800, "after_p95_ms": 280, "optimizations_applied": 8}'),
    ('1e000000-0000-4000-8000-000000000005', 'a1000000-0000-4000-8000-000000000002', 'throughput_increase_percent', 'gauge', 180.0, 'percent', now(),
     '{"before_rps": 50, "after_rps": 140, "batch_size_optimized": true}'),
    ('1e000000-0000-4000-8000-000000000006', 'a1000000-0000-4000-8000-000000000002', 'tuning_execution_time_seconds', 'gauge', 320.5, 'seconds', now(),
     '{"tests_run": 25, "configurations_tested": 15}'),
    ('1e000000-0000-4000-8000-000000000007', 'a1000000-0000-4000-8000-000000000003', 'average_gpu_utilization_percent', 'gauge', 78.5, 'percent', now(),
     '{"before": 35.0, "after": 78.5, "improvement": 124.3}'),
    ('1e000000-0000-4000-8000-000000000008', 'a1000000-0000-4000-8000-000000000003', 'scaling_decisions_count', 'counter', 45, 'count', now(),
     '{"scale_ups": 23, "scale_downs": 22, "period_days": 30}'),
    ('1e000000-0000-4000-8000-000000000009', 'a1000000-0000-4000-8000-000000000003', 'scaling_accuracy_percent', 'gauge', 92.0, 'percent', now(),
     '{"correct_decisions": 41, "total_decisions": 45, "false_positives": 4}'),
    ('1e000000-0000-4000-8000-000000000010', 'a1000000-0000-4000-8000-000000000004', 'quality_score_average', 'gauge', 0.91, 'score', now(),
     '{"samples_checked": 1500, "period": "last_7_days", "threshold": 0.85}'),
    ('1e000000-0000-4000-8000-000000000011', 'a1000000-0000-4000-8000-000000000004', 'regressions_detected_count', 'counter', 3, 'count', now(),
     '{"caught_before_production": 3, "auto_rolled_back": 2, "manual_review": 1}'),
    ('1e000000-0000-4000-8000-000000000012', 'a1000000-0000-4000-8000-000000000004', 'check_execution_time_seconds', 'gauge', 28.7, 'seconds', now(),
     '{"samples_per_check": 100, "parallel_checks": 4}')
  ) AS v (id, agent_id, metric_name, metric_type, metric_value, metric_unit, collection_timestamp, metadata)
 WHERE NOT EXISTS (SELECT 1 FROM agent_metrics m WHERE m.id = v.id::uuid);
